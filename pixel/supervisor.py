"""`pixel up`: run every service as a child process in the foreground and stop them cleanly.

Children run in their own sessions so a terminal's Ctrl-C reaches only us; we then stop them in
dependency order: the collector first (it waits for the lander to confirm what it delivered),
then the lander (it lands what it holds), then the broker (its log lives in memory).
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)


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
        child.proc = subprocess.Popen(child.argv, env=self.env, start_new_session=True)
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
