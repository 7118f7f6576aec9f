"""Stats API latency with 10M events over 30 days in the stores, p50/p95 per endpoint.

The stores hold what 10M events over 30 days leave behind: 29 closed days of batch views
(`views/daily`, `views/sessions` Parquet, in the job's schema, with real HLL sketches of each
value's visitors) for 5 sites with Zipf-distributed pages, sources, browsers, OS and devices,
~3 pageviews per visitor; and today's minute rows in the embedded real-time store (DuckDB), as
the speed layer's windows would leave them. Built once and cached (bench/results/cache/).

The API runs as in `pixel serve` (uvicorn, one worker) and is called over loopback HTTP by one
client, each endpoint N times for the biggest site over `period=30d` (the seam: 29 batch days +
today live). Baseline, same run: `GET /healthz` (uvicorn + FastAPI + one watermark read: the
floor any endpoint pays).

    .venv/bin/python bench/serving_api.py [--requests 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import random
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EVENTS, DAYS, SITES = 10_000_000, 30, 5
CACHE = ROOT / "bench" / "results" / "cache" / "serving-v1"
VALUES = {
    "page": [f"/docs/page-{i}" for i in range(80)],
    "source": [f"source-{i}.example" for i in range(25)],
    "browser": [
        "Chrome",
        "Safari",
        "Firefox",
        "Edge",
        "Samsung Internet",
        "Opera",
        "Mobile Safari",
        "Chrome Mobile",
        "Firefox Mobile",
        "Other",
    ],
    "os": ["Windows", "Mac OS X", "iOS", "Android", "Linux", "Chrome OS", "Ubuntu", "Fedora"],
    "device": ["desktop", "mobile", "tablet"],
}


def zipf_pick(rng: random.Random, values: list[str], n: int) -> list[str]:
    return rng.choices(values, [1 / (i + 1) for i in range(len(values))], k=n)


def build(today: dt.date) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from rich.progress import Progress

    from core.lake import layout
    from core.lake.storage import FileStorage
    from core.lake.watermark import advance_watermark
    from core.settings import Settings
    from events.days import day_bounds
    from events.sketches import sketch_of
    from serving.realtime.duckdb_store import DuckDBStore

    if (CACHE / "built.json").exists():
        return CACHE
    shutil.rmtree(CACHE, ignore_errors=True)
    storage = FileStorage(CACHE)
    rng = random.Random(7)
    per_day = EVENTS // DAYS
    shares = [1 / (i + 1) for i in range(SITES)]
    sites = [f"site{i + 1}.example" for i in range(SITES)]
    with Progress() as progress:
        task = progress.add_task("building 29 days of batch views", total=(DAYS - 1) * SITES)
        for back in range(DAYS - 1, 0, -1):
            day = today - dt.timedelta(days=back)
            daily, sessions = [], []
            for site, share in zip(sites, shares):
                events = int(per_day * share / sum(shares))
                visitors = [f"{day}-{site}-{i}" for i in range(events // 3)]
                hits = rng.choices(visitors, k=events)
                daily.append(
                    {
                        "site": site,
                        "dimension": "total",
                        "value": "",
                        "pageviews": events,
                        "visitors": len(set(hits)),
                        "visitors_hll": sketch_of(set(hits)),
                    }
                )
                for dim, values in VALUES.items():
                    # per-visitor attributes (browser, os, device) or per-hit ones (page, source)
                    picks = zipf_pick(rng, values, len(visitors) if dim in ("browser", "os", "device") else events)
                    groups: dict[str, list[str]] = {}
                    if dim in ("browser", "os", "device"):
                        of = dict(zip(visitors, picks))
                        for v in hits:
                            groups.setdefault(of[v], []).append(v)
                    else:
                        for v, value in zip(hits, picks):
                            groups.setdefault(value, []).append(v)
                    for value, vs in groups.items():
                        daily.append(
                            {
                                "site": site,
                                "dimension": dim,
                                "value": value,
                                "pageviews": len(vs),
                                "visitors": len(set(vs)),
                                "visitors_hll": sketch_of(set(vs)),
                            }
                        )
                visits = int(len(set(hits)) * 1.3)
                sessions.append(
                    {
                        "site": site,
                        "dimension": "total",
                        "value": "",
                        "visits": visits,
                        "bounces": visits // 2,
                        "pageviews": events,
                        "duration_ms": visits * 60_000,
                    }
                )
                progress.advance(task)
            for view, rows in (("daily", daily), ("sessions", sessions)):
                sink = io.BytesIO()
                pq.write_table(pa.Table.from_pylist(rows), sink)
                storage.write_atomic(f"{layout.view_dir(view, day)}/part-00000.parquet", sink.getvalue())
        advance_watermark(storage, today - dt.timedelta(days=1))

        # Today so far (12 hours): one row per minute, site and dimension value that had hits.
        store = DuckDBStore(Settings(data_dir=CACHE).realtime_db)
        start = day_bounds(today)[0]
        minutes = 12 * 60
        task = progress.add_task("filling today's real-time store", total=minutes)
        for minute in range(minutes):
            rows = []
            for site, share in zip(sites, shares):
                n = max(1, int(per_day / 1440 * share / sum(shares)))
                vs = [f"t-{site}-{rng.randrange(n * 10)}" for _ in range(min(n, 50))]
                ts = start + minute * 60_000
                rows.append(
                    {
                        "window_start": ts,
                        "window_end": ts + 10_000,
                        "site": site,
                        "dimension": "total",
                        "value": "",
                        "pageviews": n,
                        "visitors_hll": sketch_of(vs),
                    }
                )
                for dim, values in VALUES.items():
                    for value in zipf_pick(rng, values, 3):
                        rows.append(
                            {
                                "window_start": ts,
                                "window_end": ts + 10_000,
                                "site": site,
                                "dimension": dim,
                                "value": value,
                                "pageviews": max(1, n // 3),
                                "visitors_hll": sketch_of(vs[:10]),
                            }
                        )
            store.ingest(rows)
            progress.advance(task)
        store.db.close()
    (CACHE / "built.json").write_text(json.dumps({"events": EVENTS, "days": DAYS, "today": str(today)}))
    return CACHE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per endpoint")
    args = parser.parse_args()

    import httpx
    import uvicorn

    from core.settings import Settings
    from serving.app import create_app
    from serving.registry import Registry
    from tests.harness import free_port, wait_until

    today = dt.datetime.now(dt.UTC).date()
    built = json.loads((CACHE / "built.json").read_text()) if (CACHE / "built.json").exists() else {}
    if built.get("today") != str(today):  # the views are relative to today: rebuild on a new day
        shutil.rmtree(CACHE, ignore_errors=True)
    data = build(today)
    settings = Settings(data_dir=data, serving_port=free_port())
    registry = Registry(settings.registry_database_url)
    if registry.site("site1.example") is None:
        registry.create_site("site1.example", public=True)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, ingest=False), host="127.0.0.1", port=settings.serving_port, log_level="warning"
        )
    )
    threading.Thread(target=server.run, daemon=True).start()
    wait_until(lambda: server.started, 30, message="server started")

    base = {"site_id": "site1.example", "period": "30d"}
    endpoints = {
        "GET /healthz (baseline)": ("/healthz", {}),
        "aggregate visitors,pageviews,visits": (
            "/api/v1/stats/aggregate",
            {**base, "metrics": "visitors,pageviews,visits"},
        ),
        "timeseries (30 daily points)": ("/api/v1/stats/timeseries", {**base, "metrics": "visitors,pageviews"}),
        "breakdown event:page": (
            "/api/v1/stats/breakdown",
            {**base, "property": "event:page", "metrics": "visitors,pageviews", "limit": 10},
        ),
        "breakdown visit:source": (
            "/api/v1/stats/breakdown",
            {**base, "property": "visit:source", "metrics": "visitors,pageviews", "limit": 10},
        ),
        "realtime/visitors": ("/api/v1/stats/realtime/visitors", {"site_id": "site1.example"}),
    }
    results = {}
    with httpx.Client(base_url=f"http://127.0.0.1:{settings.serving_port}", timeout=30) as client:
        for name, (path, params) in endpoints.items():
            first = client.get(path, params=params)  # warm: the day cache fills on first use
            assert first.status_code == 200, first.text
            times = []
            for _ in range(args.requests):
                started = time.perf_counter()
                assert client.get(path, params=params).status_code == 200
                times.append((time.perf_counter() - started) * 1000)
            times.sort()
            results[name] = (statistics.median(times), times[int(len(times) * 0.95) - 1])
            print(f"{name}: p50 {results[name][0]:.2f} ms, p95 {results[name][1]:.2f} ms", flush=True)
    server.should_exit = True

    floor = results["GET /healthz (baseline)"][0]
    print(
        f"\n{EVENTS:,} events over {DAYS} days, 5 sites; {args.requests} sequential requests per endpoint, "
        "site1.example, period=30d\n"
    )
    print("| endpoint | p50 ms | p95 ms | p50 / baseline |")
    print("|---|---:|---:|---:|")
    for name, (p50, p95) in results.items():
        print(f"| {name} | {p50:.2f} | {p95:.2f} | {p50 / floor:.1f}x |")


if __name__ == "__main__":
    main()
