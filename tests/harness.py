"""Test harness: real engines and real processes on free loopback ports.

Everything here starts the actual thing (tansu, `pixel collector`, `pixel lander`) and reads
results from where the platform writes them; nothing about Kafka is mocked.
"""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson

from core.kafka.clients import ensure_topics
from core.process import die_with_this_process
from core.settings import Settings
from core.settings import settings_env as core_settings_env
from infra.tansu import free_port, start_tansu, wait_for_port


def make_settings(data_dir: Path, **overrides) -> Settings:
    values = dict(
        data_dir=data_dir,
        broker_port=free_port(),
        collector_port=free_port(),
        serving_port=free_port(),
        lander_flush_seconds=0.5,
        api_rate_per_hour=10_000_000,  # tests poll the API; the limits have their own test
        raw_partitions=4,
    )
    values.update(overrides)
    return Settings(**values)


def settings_env(settings: Settings) -> dict[str, str]:
    env = core_settings_env(settings)
    env["PIXEL_LOG_LEVEL"] = "INFO"
    return env


class Broker:
    """A real tansu on its own port; restartable (with an empty log, as in production here)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.proc: subprocess.Popen | None = None

    def start(self) -> Broker:
        self.proc = start_tansu(self.settings.broker_host, self.settings.broker_port)
        ensure_topics(self.settings)
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    stop = kill


class Service:
    """A `pixel <command>` subprocess with the test's settings; its log goes to a file."""

    def __init__(self, command: str, settings: Settings, log_dir: Path):
        self.command = command
        self.settings = settings
        self.log_path = log_dir / f"{command}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Service:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pixel.cli", self.command],
            env=settings_env(self.settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill() takes uvicorn workers too
            preexec_fn=die_with_this_process(),  # and it never outlives a killed test run or benchmark
        )
        if self.command == "collector":
            wait_for_port(self.settings.collector_host, self.settings.collector_port, 30)
        return self

    def stop(self, timeout: float = 60) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"{self.command} ignored SIGTERM for {timeout}s; log: {self.log()}") from None
        return self.proc.returncode if self.proc else 0

    def kill(self) -> None:
        """SIGKILL the service and every process it started (uvicorn workers)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""


def read_landed(data_dir: Path, prefix: str = "raw") -> list[dict]:
    """Every line of every landed file under data_dir/prefix, in file-name order."""
    rows = []
    for path in sorted((data_dir / prefix).rglob("*.jsonl.gz")):
        rows.extend(orjson.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines())
    return rows


def wait_until(predicate, timeout: float, interval: float = 0.25, message: str | Callable[[], str] = "condition"):
    """predicate()'s first true value within ``timeout`` s; else an AssertionError with ``message``
    (a callable is called then: a log read at the failure, not before the wait)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {message() if callable(message) else message}")


def send_hits(base_url: str, n: int, site: str = "example.com", tag: str = "h", start: int = 0) -> None:
    """n hits alternating GET /p.gif and POST /collect, each with a unique url ending in /<tag><i>."""
    with httpx.Client(base_url=base_url, timeout=10) as client:
        for i in range(start, start + n):
            url = f"https://{site}/{tag}{i}"
            if i % 2 == 0:
                r = client.get(
                    "/p.gif",
                    params={"site": site, "url": url},
                    headers={"user-agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"},
                )
                assert r.status_code == 200 and r.headers["content-type"] == "image/gif", r.text
            else:
                r = client.post(
                    "/collect",
                    json={"site": site, "url": url},
                    headers={"user-agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"},
                )
                assert r.status_code == 204, r.text
