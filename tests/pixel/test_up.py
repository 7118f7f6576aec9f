"""`pixel up` as a user runs it: start, send traffic, Ctrl-C; everything stops and nothing is lost."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from infra.tansu import wait_for_port
from tests.harness import make_settings, read_landed, send_hits, settings_env

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
