"""The raw store behind one small interface: file:// (default) and hdfs:// (WebHDFS).

The contract every implementation keeps (tests/batch_layer/test_storage.py runs it):
- write_atomic(path, data): after it returns the file is durable and complete; readers never see
  a partial file; an existing file at that path is replaced (re-landing overwrites itself).
- read / exists / list_files (recursive, relative paths, sorted) / file_sizes (the same files'
  sizes in bytes) / file_stamps (their size and modification time: a file rewritten since has
  another stamp) / delete.
- remove_dir(path): the folder and everything under it are gone (nothing to do if absent).
- replace_dir(src, dst): the folder src becomes dst, whatever dst held before is gone (how a
  batch run publishes a day's output it wrote elsewhere). Not atomic on either store: a reader in
  between may find dst missing, never mixed.
Paths are relative to the store's root and always use '/'.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse


class Storage(Protocol):
    url: str

    def write_atomic(self, path: str, data: bytes) -> None: ...
    def read(self, path: str) -> bytes: ...
    def exists(self, path: str) -> bool: ...
    def list_files(self, prefix: str = "") -> list[str]: ...
    def file_sizes(self, prefix: str = "") -> dict[str, int]: ...
    def file_stamps(self, prefix: str = "") -> dict[str, tuple[int, int]]: ...
    def list_dirs(self, prefix: str = "") -> list[str]: ...
    def delete(self, path: str) -> None: ...
    def remove_dir(self, path: str) -> None: ...
    def replace_dir(self, src: str, dst: str) -> None: ...


class FileStorage:
    """Local filesystem: write to a temp file, fsync it, rename over the target, fsync the dir."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.url = f"file://{self.root.resolve()}"

    def _abs(self, path: str) -> Path:
        full = (self.root / path).resolve()
        if self.root.resolve() not in full.parents and full != self.root.resolve():
            raise ValueError(f"path {path!r} escapes the store root")
        return full

    def write_atomic(self, path: str, data: bytes) -> None:
        target = self._abs(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)

    def read(self, path: str) -> bytes:
        return self._abs(path).read_bytes()

    def exists(self, path: str) -> bool:
        return self._abs(path).exists()

    def list_files(self, prefix: str = "") -> list[str]:
        return sorted(self.file_sizes(prefix))

    def file_sizes(self, prefix: str = "") -> dict[str, int]:
        return {path: size for path, (size, _) in self.file_stamps(prefix).items()}

    def file_stamps(self, prefix: str = "") -> dict[str, tuple[int, int]]:
        """Path -> (size, modification time in ns)."""
        base = self._abs(prefix) if prefix else self.root.resolve()
        if not base.exists():
            return {}
        root = self.root.resolve()
        return {
            str(p.relative_to(root)).replace(os.sep, "/"): (stat.st_size, stat.st_mtime_ns)
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".") and (stat := p.stat())
        }

    def list_dirs(self, prefix: str = "") -> list[str]:
        """Names of the folders directly under prefix (cheap where list_files would walk years)."""
        base = self._abs(prefix) if prefix else self.root.resolve()
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []

    def delete(self, path: str) -> None:
        self._abs(path).unlink(missing_ok=True)

    def remove_dir(self, path: str) -> None:
        target = self._abs(path)
        if target == self.root.resolve():
            raise ValueError("refusing to remove the store's root")
        if target.exists():
            shutil.rmtree(target)

    def replace_dir(self, src: str, dst: str) -> None:
        source, target = self._abs(src), self._abs(dst)
        self.remove_dir(dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    """A rename in ``folder`` made durable: it must survive a power cut, as the file it names."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class HdfsStorage:
    """HDFS over WebHDFS (the `hdfs` package). URL: hdfs://namenode:9870/root/path.

    HDFS has no rename-over: we write a temp file (closed = durable on the datanodes' pipeline),
    delete any old target, then rename. A reader racing the delete+rename may briefly miss the
    file, never see a partial one.
    """

    def __init__(self, url: str, user: str = "pixel", client=None):
        parsed = urlparse(url)
        if parsed.scheme != "hdfs" or not parsed.hostname:
            raise ValueError(f"not an hdfs:// URL with a namenode: {url!r}")
        self.url = url
        self.base = parsed.path.rstrip("/") or "/"
        if client is None:
            from hdfs import InsecureClient

            client = InsecureClient(f"http://{parsed.hostname}:{parsed.port or 9870}", user=user)
        self.client = client

    def _abs(self, path: str) -> str:
        if ".." in path.split("/"):
            raise ValueError(f"path {path!r} escapes the store root")
        return f"{self.base}/{path}".replace("//", "/") if path else self.base

    def write_atomic(self, path: str, data: bytes) -> None:
        target = self._abs(path)
        parent, name = target.rsplit("/", 1)
        tmp = f"{parent}/.{name}.{uuid.uuid4().hex}.tmp"
        self.client.makedirs(parent)
        self.client.write(tmp, data=data, overwrite=True)
        self.client.delete(target)  # returns False when absent
        self.client.rename(tmp, target)

    def read(self, path: str) -> bytes:
        with self.client.read(self._abs(path)) as reader:
            return reader.read()

    def exists(self, path: str) -> bool:
        return self.client.status(self._abs(path), strict=False) is not None

    def list_files(self, prefix: str = "") -> list[str]:
        return sorted(self.file_sizes(prefix))

    def file_sizes(self, prefix: str = "") -> dict[str, int]:
        return {path: size for path, (size, _) in self.file_stamps(prefix).items()}

    def file_stamps(self, prefix: str = "") -> dict[str, tuple[int, int]]:
        """Path -> (size, modification time in ms): one LISTSTATUS per folder, no reads."""
        top = self._abs(prefix)
        if self.client.status(top, strict=False) is None:
            return {}
        strip = len(self.base.rstrip("/")) + 1
        return {
            f"{dirpath}/{name}"[strip:]: (status["length"], status["modificationTime"])
            for (dirpath, _), _dirs, files in self.client.walk(top, status=True)
            for name, status in files
            if not name.startswith(".")
        }

    def list_dirs(self, prefix: str = "") -> list[str]:
        top = self._abs(prefix)
        if self.client.status(top, strict=False) is None:
            return []
        return sorted(name for name, status in self.client.list(top, status=True) if status["type"] == "DIRECTORY")

    def delete(self, path: str) -> None:
        self.client.delete(self._abs(path))

    def remove_dir(self, path: str) -> None:
        if self._abs(path) == self.base:
            raise ValueError("refusing to remove the store's root")
        self.client.delete(self._abs(path), recursive=True)

    def replace_dir(self, src: str, dst: str) -> None:
        # WebHDFS RENAME onto an existing folder would move src inside it: remove dst first.
        self.remove_dir(dst)
        self.client.makedirs(self._abs(dst).rsplit("/", 1)[0])
        self.client.rename(self._abs(src), self._abs(dst))


def open_storage(url: str, hdfs_user: str = "pixel") -> Storage:
    scheme = urlparse(url).scheme
    if scheme == "file":
        return FileStorage(urlparse(url).path)
    if scheme == "hdfs":
        return HdfsStorage(url, user=hdfs_user)
    raise ValueError(f"unsupported storage URL {url!r}: use file:///path or hdfs://namenode:port/path")
