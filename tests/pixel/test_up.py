"""`pixel up` as a user runs it: start, send traffic, Ctrl-C; everything stops and nothing is lost."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.tansu import wait_for_port
from tests.harness import make_settings, read_landed, send_hits, settings_env, wait_until

pytestmark = pytest.mark.slow


def test_up_then_ctrl_c_lands_everything_and_exits_cleanly(tmp_path):
    settings = make_settings(tmp_path / "data", lander_flush_seconds=30)  # only the stop flushes
    log = open(tmp_path / "up.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pixel.cli", "up"], env=settings_env(settings), stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_for_port(settings.collector_host, settings.collector_port, 60)
        wait_for_port(settings.serving_host, settings.serving_port, 60)
        send_hits(f"http://{settings.collector_host}:{settings.collector_port}", 100, tag="u")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(90) == 0, (tmp_path / "up.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    urls = sorted(e["url"] for e in read_landed(settings.data_dir))
    assert urls == sorted(f"https://example.com/u{i}" for i in range(100))
    out = (tmp_path / "up.log").read_text()
    for name in ("collector", "batch", "serve", "speed", "lander", "broker"):
        assert f"{name} stopped" in out


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (Linux /proc/PID/task/TID/children)."""
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            for child in children:
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:100].decode(errors="replace")
    except OSError:
        return "(gone)"


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


def test_up_killed_takes_every_service_with_it_and_a_second_up_refuses(tmp_path):
    settings = make_settings(tmp_path / "data")
    env = settings_env(settings)
    log = open(tmp_path / "up.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "pixel.cli", "up"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(settings.collector_host, settings.collector_port, 60)
        wait_for_port(settings.serving_host, settings.serving_port, 60)
        second = subprocess.run(
            [sys.executable, "-m", "pixel.cli", "up"], env=env, capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 2 and "another `pixel up`" in second.stderr, second.stderr[-2000:]
        other_dir = {**env, "PIXEL_DATA_DIR": str(tmp_path / "other")}
        busy = subprocess.run(
            [sys.executable, "-m", "pixel.cli", "up"], env=other_dir, capture_output=True, text=True, timeout=60
        )
        assert busy.returncode == 2 and "is in use" in busy.stderr and "PIXEL_BROKER_PORT" in busy.stderr
        wait_until(lambda: len(descendants(proc.pid)) >= 7, 60, message="every service and its engines started")
        below = descendants(proc.pid)
        proc.kill()  # SIGKILL: no handler runs in `pixel up` itself
        proc.wait(10)
        deadline = time.monotonic() + 10
        while [p for p in below if alive(p)] and time.monotonic() < deadline:
            time.sleep(0.25)
        survivors = {p: cmdline(p) for p in below if alive(p)}
        assert survivors == {}, "still running 10 s after their supervisor died"
    finally:
        if proc.poll() is None:
            proc.kill()
    for port in (settings.broker_port, settings.collector_port, settings.serving_port):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))  # free again: the next `pixel up` can start
