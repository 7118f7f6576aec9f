"""Monitoring with a real Prometheus (Debian's `prometheus` and `promtool`): the shipped config
and alert rules check; a config derived from infra/prometheus/prometheus.yml, pointed at a
running `pixel up`, finds every target up and the platform's key series, and loads the rules."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from infra.tansu import wait_for_port
from tests.harness import free_port, make_settings, settings_env, wait_until

pytestmark = pytest.mark.slow
PROMETHEUS = Path(__file__).resolve().parents[2] / "infra" / "prometheus"
KEY_SERIES = [
    "pixel_hits_total",  # collector
    "pixel_broker_up",
    "pixel_spool_bytes",
    "pixel_lander_events_total",  # lander
    "pixel_lander_oldest_unlanded_seconds",
    "pixel_serving_requests_total",  # serving
    "pixel_serving_ingested_rows",
    "pixel_serving_agg_held_back_seconds",
    "pixel_batch_watermark_age_seconds",
]


def tools() -> tuple[str, str]:
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not (prometheus and promtool):
        pytest.fail("Debian's prometheus package is needed (prometheus, promtool): run `make setup`")
    return prometheus, promtool


def test_the_shipped_config_and_rules_check():
    _, promtool = tools()
    for command in (["check", "config", "prometheus.yml"], ["check", "rules", "alerts.yml"]):
        done = subprocess.run([promtool, *command], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 5 rules found" in done.stdout


def test_prometheus_scrapes_a_running_pixel_up(tmp_path):
    prometheus, promtool = tools()
    settings = make_settings(tmp_path / "data", lander_metrics_port=free_port())
    # The shipped config, its jobs of the services `pixel up` runs pointed at this machine's ports.
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    local = {
        "collector": f"127.0.0.1:{settings.collector_port}",
        "lander": f"127.0.0.1:{settings.lander_metrics_port}",
        "serving": f"127.0.0.1:{settings.serving_port}",
    }
    port = free_port()
    local["prometheus"] = f"127.0.0.1:{port}"
    config["global"] |= {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["scrape_configs"] = [
        {**job, "static_configs": [{"targets": [local[job["job_name"]]]}]}
        for job in config["scrape_configs"]
        if job["job_name"] in local
    ]
    assert {job["job_name"] for job in config["scrape_configs"]} == set(local)
    shutil.copy(PROMETHEUS / "alerts.yml", tmp_path / "alerts.yml")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    check = subprocess.run(
        [promtool, "check", "config", "prometheus.yml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr

    log = open(tmp_path / "up.log", "wb")
    up = subprocess.Popen(
        [sys.executable, "-m", "pixel.cli", "up"], env=settings_env(settings), stdout=log, stderr=subprocess.STDOUT
    )
    server = subprocess.Popen(
        [
            prometheus,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "prometheus.log", "wb"),
    )
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        wait_for_port(settings.collector_host, settings.collector_port, 90)
        wait_for_port(settings.serving_host, settings.serving_port, 90)
        wait_for_port("127.0.0.1", port, 60)
        for _ in range(5):
            httpx.get(
                f"http://127.0.0.1:{settings.collector_port}/p.gif",
                params={"site": "a.example", "url": "https://a.example/"},
            )
        httpx.get(f"http://127.0.0.1:{settings.serving_port}/healthz")

        def targets_up() -> bool:
            active = httpx.get(f"{api}/targets").json()["data"]["activeTargets"]
            return len(active) == len(local) and all(t["health"] == "up" for t in active)

        wait_until(targets_up, 120, interval=1, message="every target up")

        def series(name: str) -> list:
            return httpx.get(f"{api}/query", params={"query": name}).json()["data"]["result"]

        wait_until(lambda: all(series(name) for name in KEY_SERIES), 60, interval=1, message="the key series")
        hits = series('pixel_hits_total{route="gif"}')
        assert float(hits[0]["value"][1]) >= 5
        assert float(series("pixel_broker_up")[0]["value"][1]) == 1  # up from the start, not once back

        def rules() -> list[dict]:
            return httpx.get(f"{api}/rules").json()["data"]["groups"][0]["rules"]

        # Evaluated without error over the live series (none firing: nothing is wrong).
        wait_until(lambda: all(r["health"] == "ok" for r in rules()), 30, interval=1, message="rules evaluated")
        assert sorted(r["name"] for r in rules()) == [
            "PixelAggTransactionOpen",
            "PixelBatchWatermarkOld",
            "PixelCollectorSpooling",
            "PixelLanderLag",
            "PixelSpeedLayerNotCommitting",
        ]
        # None firing. "pending" is allowed: PixelSpeedLayerNotCommitting's condition holds for
        # the seconds before the speed job's first window (longer on a loaded box), far from its 10 m.
        states = {r["name"]: r["state"] for r in rules()}
        assert "firing" not in states.values(), states
    finally:
        server.terminate()
        server.wait(30)
        up.send_signal(signal.SIGINT)
        try:
            up.wait(120)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()
