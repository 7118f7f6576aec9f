"""`pixel up`: run every service as a child process in the foreground and stop them cleanly.

Children run in their own sessions so a terminal's Ctrl-C reaches only us; we then stop them in
dependency order: the collector first (it waits for the lander to confirm what it delivered),
then the lander (it lands what it holds), then the broker (its log lives in memory).
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from core.process import die_with_this_process

log = logging.getLogger(__name__)


class AlreadyRunning(RuntimeError):
    """Another `pixel up` holds the data dir, or a port the platform needs is taken."""


def hold_data_dir(run_dir: Path) -> int:
    """An exclusive lock on ``run_dir``/up.lock for this process's life (the kernel releases it
    when the process dies, however it dies); AlreadyRunning if another `pixel up` holds it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / "up.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise AlreadyRunning(
            f"another `pixel up` (pid {holder}) is running on the data dir {run_dir.parent}: stop it first "
            "(Ctrl-C in its terminal), or give this one its own PIXEL_DATA_DIR and ports"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def check_ports_free(ports: dict[str, tuple[str, int]]) -> None:
    """AlreadyRunning, naming the setting, if any of the ports (setting -> (host, port)) is taken."""
    for setting, (host, port) in ports.items():
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                raise AlreadyRunning(
                    f"{host}:{port} is in use (another pixel, or another program): stop it, or set "
                    f"{setting} to a free port"
                ) from None


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen | None = None


class Supervisor:
    def __init__(self, env: dict[str, str]):
        self.env = env
        self.children: list[Child] = []
        self.stopping = False

    def start(self, name: str, *args: str) -> Child:
        child = Child(name, [sys.executable, "-m", "pixel.cli", *args])
        # Own session: a terminal's Ctrl-C reaches only us. Death-linked: if we die, however
        # (SIGKILL included), the kernel sends each child SIGTERM and it stops cleanly itself.
        child.proc = subprocess.Popen(
            child.argv, env=self.env, start_new_session=True, preexec_fn=die_with_this_process()
        )
        self.children.append(child)
        log.info("started %s (pid %d)", name, child.proc.pid)
        return child

    def wait(self) -> int:
        """Block until Ctrl-C/SIGTERM or until a child dies; then stop everything in order."""
        signal.signal(signal.SIGINT, self._request_stop)
        signal.signal(signal.SIGTERM, self._request_stop)
        code = 0
        while not self.stopping:
            for child in self.children:
                if child.proc.poll() is not None:
                    log.error("%s exited with code %s; stopping the platform", child.name, child.proc.returncode)
                    code = 1
                    self.stopping = True
                    break
            time.sleep(0.2)
        self.stop_all()
        return code

    def _request_stop(self, *_):
        if not self.stopping:
            log.info("stopping the platform cleanly (Ctrl-C again to force)...")
            self.stopping = True
        else:
            for child in self.children:
                if child.proc.poll() is None:
                    child.proc.kill()

    def stop_all(self, timeout: float = 45.0) -> None:
        for child in reversed(self.children):  # started in dependency order
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
                try:
                    child.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    log.error("%s did not stop in %.0fs; killing it", child.name, timeout)
                    child.proc.kill()
                    child.proc.wait()
            log.info("%s stopped", child.name)
