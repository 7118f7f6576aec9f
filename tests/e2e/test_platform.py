"""The whole platform as a user runs it: `pixel up` on free ports over a data dir that already
holds two past days of raw events. The nightly scheduler closes them with the batch job on start;
live hits go collector -> broker -> speed layer -> serving. The Stats API must then give exact
pageviews for the closed days and for today, and visitors within the sketch's error; and where
visitors are (the collector behind a trusted proxy) and which channel brought them, on both
sides of the seam."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys

import httpx
import pytest

from events.props import props_text
from infra.tansu import wait_for_port
from serving.registry import Registry
from tests.batch_layer.rawdata import RawDataset, event, ms
from tests.harness import make_settings, settings_env, wait_until

pytestmark = pytest.mark.slow
LIVE_HITS, LIVE_VISITORS = 40, 20
X = "x.example"  # a site whose traffic carries HTML
XSS = '<img src=x onerror="window.__xss=1">'


def dashboard_runs_no_traffic_html(browser, api: str, closed_day: dt.date) -> None:
    """The dashboard over the hit sent live and the closed day's event, both carrying HTML in their
    page and property: shown as text, run never."""
    page = f"/sites/{X}?period=7d"
    wait_until(lambda: f"/{XSS}" in breakdown(api, "event:page", period="day"), 120, message="the live hit counted")
    browser.get(f"{api}{page}")
    wait_until(lambda: browser.find_element("tag name", "body").get_attribute("data-loaded") == "true", 30)
    rows = browser.find_elements("css selector", 'table[data-property="event:page"] tbody tr .text')
    assert [r.text for r in rows] == [f"/{XSS}"]  # today's (live) and the closed day's, one row
    browser.find_element("css selector", '#panel-goals .tab[data-tab="properties"]').click()
    wait_until(lambda: browser.find_element("id", "panel-goals").get_attribute("data-loaded") == "true", 30)
    values = browser.find_elements("css selector", "#panel-goals tbody tr .text")
    assert [v.text for v in values] == [XSS]  # the closed day's property (the speed layer has none)
    assert browser.execute_script("return window.__xss") is None
    assert not browser.find_elements("css selector", "main img")
    assert breakdown(api, f"event:props:{XSS}", period="custom", date=f"{closed_day},{closed_day}") == {XSS: 1}


def breakdown(api: str, prop: str, **params) -> dict:
    r = httpx.get(
        f"{api}/api/v1/stats/breakdown",
        params={"site_id": X, "property": prop, "metrics": "pageviews,events", **params},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    key = prop.removeprefix("event:props:").split(":")[-1]
    return {row[key]: row["events"] for row in r.json()["results"]}


def test_up_serves_closed_days_from_batch_and_today_from_the_stream(tmp_path, browser):
    today = dt.datetime.now(dt.UTC).date()
    d2, d1 = today - dt.timedelta(days=2), today - dt.timedelta(days=1)
    settings = make_settings(
        tmp_path / "data",
        batch_lateness_hours=0,
        trusted_proxies=["127.0.0.1/32"],
    )
    raw = RawDataset(settings.data_dir)  # history, as the lander would have landed it
    raw.write(
        d2, 10, [event(f"p{i}", ms(d2, 10, i), "a.example", f"/old{i % 3}", visitor=f"v{i % 10}") for i in range(30)]
    )
    raw.write(
        d1,
        11,
        [
            event(
                f"q{i}",
                ms(d1, 11, i),
                "a.example",
                "/",
                visitor=f"w{i % 8}",
                ip_trunc="81.2.69.0" if i % 2 else "8.8.8.0",  # London, Mountain View
                referrer="https://www.google.com/" if i < 8 else "",
            )
            for i in range(20)
        ],
    )
    raw.write(d1, 12, [event("x0", ms(d1, 12), X, f"/{XSS}", visitor="x0", props=props_text({XSS: XSS}))])
    Registry(settings.registry_database_url).create_site("a.example", public=True)
    Registry(settings.registry_database_url).create_site(X, public=True)

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
                        # The client's address as the (trusted) proxy in front of the collector saw it.
                        headers={
                            "user-agent": ua,
                            "x-forwarded-for": "81.2.69.160" if i % LIVE_VISITORS < 10 else "8.8.8.8",
                        },
                    ).status_code
                    == 200
                )

            def live_counted() -> bool:
                # Hits on another site move the event-time watermark, closing a.example's last window.
                client.get("/p.gif", params={"site": "nudge.example", "url": "https://nudge.example/"})
                return pageviews_and_visitors(period="day")[0] >= LIVE_HITS

            wait_until(live_counted, 180, interval=2, message="today's hits counted by the speed layer")
            # A hit whose page and property carry HTML, sent as a browser would.
            xss = {"site": X, "url": f"https://{X}/{XSS}", "p.note": XSS}
            assert (
                client.get("/p.gif", params=xss, headers={"user-agent": "Mozilla/5.0 Firefox/130.0"}).status_code == 200
            )

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

        def v2(date_range, dimension: str) -> dict:
            body = {
                "site_id": "a.example",
                "metrics": ["pageviews"],
                "date_range": date_range,
                "dimensions": [dimension],
            }
            r = httpx.post(f"{api}/api/v2/query", json=body, timeout=10)
            assert r.status_code == 200, r.text
            return {row["dimensions"][0]: row["metrics"][0] for row in r.json()["results"]}

        # d2's raw events are from a documentation network (198.51.100.0): located nowhere.
        assert v2([str(d2), str(d1)], "visit:country") == {"": 30, "GB": 10, "US": 10}
        assert v2([str(d1), str(d1)], "visit:city") == {"London": 10, "Mountain View": 10}
        assert v2([str(today), str(today)], "visit:country") == {"GB": LIVE_HITS // 2, "US": LIVE_HITS // 2}
        # A visit's channel is its entry hit's: w0..w7 entered from Google.
        assert v2([str(d1), str(d1)], "visit:channel") == {"Organic Search": 20}
        assert v2([str(today), str(today)], "visit:channel") == {"Direct": LIVE_HITS}
        dashboard_runs_no_traffic_html(browser, api, d1)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(120) == 0, (tmp_path / "up.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
