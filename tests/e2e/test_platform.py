"""The whole platform as a user runs it: `pixel up` on free ports over a data dir that already
holds two past days of raw events. The nightly scheduler closes them with the batch job on start;
live hits go collector -> broker -> speed layer -> serving. The Stats API must then give exact
pageviews for the closed days and for today, and visitors within the sketch's error."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys

import httpx
import pytest

from infra.tansu import wait_for_port
from serving.registry import Registry
from tests.batch_layer.rawdata import RawDataset, event, ms
from tests.harness import make_settings, settings_env, wait_until

pytestmark = pytest.mark.slow
LIVE_HITS, LIVE_VISITORS = 40, 20


def test_up_serves_closed_days_from_batch_and_today_from_the_stream(tmp_path):
    today = dt.datetime.now(dt.UTC).date()
    d2, d1 = today - dt.timedelta(days=2), today - dt.timedelta(days=1)
    settings = make_settings(
        tmp_path / "data",
        batch_lateness_hours=0,
        speed_window_seconds=1,
        speed_watermark_seconds=1,
        speed_checkpoint_seconds=1,
    )
    raw = RawDataset(settings.data_dir)  # history, as the lander would have landed it
    raw.write(
        d2, 10, [event(f"p{i}", ms(d2, 10, i), "a.example", f"/old{i % 3}", visitor=f"v{i % 10}") for i in range(30)]
    )
    raw.write(d1, 11, [event(f"q{i}", ms(d1, 11, i), "a.example", "/", visitor=f"w{i % 8}") for i in range(20)])
    Registry(settings.registry_database_url).create_site("a.example", public=True)

    log = open(tmp_path / "up.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pixel.cli", "up"], env=settings_env(settings), stdout=log, stderr=subprocess.STDOUT
    )
    api = f"http://{settings.serving_host}:{settings.serving_port}"
    collector = f"http://{settings.collector_host}:{settings.collector_port}"

    def pageviews_and_visitors(**params) -> tuple[int, int]:
        r = httpx.get(
            f"{api}/api/v1/stats/aggregate",
            params={"site_id": "a.example", "metrics": "pageviews,visitors", **params},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        return r.json()["results"]["pageviews"]["value"], r.json()["results"]["visitors"]["value"]

    try:
        wait_for_port(settings.collector_host, settings.collector_port, 90)
        wait_for_port(settings.serving_host, settings.serving_port, 90)
        with httpx.Client(base_url=collector, timeout=10) as client:
            for i in range(LIVE_HITS):  # a distinct UA per visitor: its own visitor id
                version = f"1{i % LIVE_VISITORS:02d}.0"
                ua = f"Mozilla/5.0 (X11; Linux x86_64; rv:{version}) Gecko/20100101 Firefox/{version}"
                assert (
                    client.get(
                        "/p.gif",
                        params={"site": "a.example", "url": f"https://a.example/live{i}"},
                        headers={"user-agent": ua},
                    ).status_code
                    == 200
                )

            def live_counted() -> bool:
                # Hits on another site move the event-time watermark, closing a.example's last window.
                client.get("/p.gif", params={"site": "nudge.example", "url": "https://nudge.example/"})
                return pageviews_and_visitors(period="day")[0] >= LIVE_HITS

            wait_until(live_counted, 180, interval=2, message="today's hits counted by the speed layer")

        wait_until(
            lambda: httpx.get(f"{api}/healthz").json()["batch_watermark"] == str(d1),
            240,
            interval=2,
            message="the nightly scheduler closed the two past days",
        )
        assert pageviews_and_visitors(period="custom", date=f"{d2},{d1}") == (50, 18)  # exact: batch
        assert pageviews_and_visitors(period="day", date=str(d2)) == (30, 10)
        live_pageviews, live_visitors = pageviews_and_visitors(period="day")
        assert live_pageviews == LIVE_HITS  # exact: each hit once, no loss, no duplicate
        assert abs(live_visitors - LIVE_VISITORS) <= 1  # an HLL at this size is near exact
        week_pageviews, week_visitors = pageviews_and_visitors(period="7d")
        assert week_pageviews == 50 + LIVE_HITS and abs(week_visitors - 38) <= 2  # union across the seam
        pages = httpx.get(
            f"{api}/api/v1/stats/breakdown",
            params={
                "site_id": "a.example",
                "period": "custom",
                "date": f"{d2},{d1}",
                "property": "event:page",
                "metrics": "pageviews",
            },
        ).json()["results"]
        assert {p["page"]: p["pageviews"] for p in pages} == {"/": 20, "/old0": 10, "/old1": 10, "/old2": 10}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(120) == 0, (tmp_path / "up.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
