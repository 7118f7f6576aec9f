"""The dashboard's site page in Chromium with 10M events over 30 days in the store: time to render
the whole page (top-line numbers with their changes, the chart with the previous period, every
panel's first tab and the map), the biggest of 2,000 sites and a small one.

Data and store: bench/serving_store.py's (cached clean events, loaded by the serving process's own
loader); the app runs as `pixel serve` runs it, in its own process. The page reports its time to
render in ``data-render-ms``: from the navigation's start (HTML, script, config, every API call,
drawing) to the last panel drawn. Baseline, same run: the page's API calls alone, issued from
Python in the page's order (config; then the panels, and meanwhile the numbers and the view's
query, then both series), so the ratio is what the browser adds. Settings are the defaults but the dashboard's
rate budget (PIXEL_DASHBOARD_RATE_BURST), which the bench's back-to-back loads would exhaust.

    .venv/bin/python bench/dashboard.py [--loads 30]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import serving_store as data  # noqa: E402 (the serving store bench's data, store and server)

SPAN = f"{data.FIRST_DAY},{data.FIRST_DAY + dt.timedelta(days=data.DAYS - 1)}"
BEFORE = f"{data.FIRST_DAY - dt.timedelta(days=data.DAYS)},{data.FIRST_DAY - dt.timedelta(days=1)}"  # the chart's


def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1400"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def page_loads(browser, url: str, n: int) -> list[float]:
    """``n`` loads of the page: each one's time to render (ms)."""
    samples = []
    for _ in range(n):
        browser.get("about:blank")
        browser.get(url)
        deadline = time.monotonic() + 60
        while browser.find_element("tag name", "body").get_attribute("data-loaded") != "true":
            if browser.find_element("tag name", "body").get_attribute("data-loaded") == "error" or (
                time.monotonic() > deadline
            ):
                raise RuntimeError(f"{url}: {browser.find_element('id', 'error').text or 'not rendered in 60 s'}")
            time.sleep(0.01)
        samples.append(float(browser.find_element("tag name", "body").get_attribute("data-render-ms")))
    return samples


def api_path(client, site: str, n: int) -> list[float]:
    """The page's API calls from Python, stage by stage as the page makes them: ms per page."""
    from serving.dashboard.panels import CHART_METRICS, PANELS, TOPLINE

    view = {"site_id": site, "period": "custom", "date": SPAN}
    samples = []
    with ThreadPoolExecutor(12) as pool:

        def stage(*calls):
            for response in pool.map(lambda call: client.get(call[0], params=call[1]), calls):
                assert response.status_code == 200, response.text

        series = {"site_id": site, "period": "custom", "metrics": ",".join(CHART_METRICS)}
        panels = [
            (
                "/api/v1/stats/breakdown",
                {
                    **view,
                    "property": p.tabs[0].property,
                    "metrics": ",".join(p.tabs[0].metrics),
                    "limit": 300 if p.tabs[0].property == "visit:country" else 10,
                },
            )
            for p in PANELS
        ]
        for _ in range(n):
            started = time.perf_counter()
            stage(("/api/config", {}))
            drawn = pool.submit(stage, *panels)  # the panels, while the numbers and the chart load
            stage(
                ("/api/v1/stats/aggregate", {**view, "metrics": ",".join(TOPLINE), "compare": "previous_period"}),
                (f"/api/sites/{site}/query", {"period": "custom", "date": SPAN}),
            )
            stage(
                ("/api/v1/stats/timeseries", {**series, "date": SPAN}),
                ("/api/v1/stats/timeseries", {**series, "date": BEFORE}),
            )
            drawn.result()
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def p50_p95(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loads", type=int, default=30, help="page loads per site")
    parser.add_argument("--port", type=int, default=18_451)
    args = parser.parse_args()
    import httpx

    from infra.tansu import wait_for_port

    data.build()
    events, seconds = data.load("all")
    print(f"store: {events:,} events over {data.DAYS} days, 2,000 sites (loaded in {seconds:.0f} s)")
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "serving_store.py"), "--serve", "all", "--port", str(args.port)],
        # The one setting that differs from the defaults: the dashboard's rate budget, which 60
        # page loads in a minute would exhaust (a person doesn't load that many).
        env={**os.environ, "PIXEL_LOG_LEVEL": "WARNING", "PIXEL_DASHBOARD_RATE_BURST": "1000000"},
    )
    browser = None
    try:
        wait_for_port("127.0.0.1", args.port, 60)
        base = f"http://127.0.0.1:{args.port}"
        browser = chromium()
        rows = []
        with httpx.Client(base_url=base, timeout=60, headers={"X-Pixel-Dashboard": "1"}) as client:
            for label, rank in (("biggest site", 1), ("small site (rank 500)", data.SMALL_RANK)):
                site = data.site_name(rank)
                url = f"{base}/sites/{site}?period=custom&date={SPAN}"
                cold = page_loads(browser, url, 1)[0]
                page = p50_p95(page_loads(browser, url, args.loads))
                calls = p50_p95(api_path(client, site, args.loads))
                rows.append((label, cold, page, calls))
    finally:
        if browser is not None:
            browser.quit()
        server.terminate()
        server.wait(30)
    print(f"\n{args.loads} loads per site; time to render = navigation start to every panel drawn\n")
    print("| site | first load ms | render p50 ms | p95 ms | API calls alone p50 ms | p95 ms | page / API p50 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, cold, (p50, p95), (a50, a95) in rows:
        print(f"| {label} | {cold:.0f} | {p50:.0f} | {p95:.0f} | {a50:.0f} | {a95:.0f} | {p50 / a50:.2f}x |")


if __name__ == "__main__":
    main()
