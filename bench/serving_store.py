"""The analytics store behind Stats API v2: latency of the dashboard's queries with 10M events over
30 closed days across 2,000 sites, and whether one site's cost depends on the other tenants.

Data: clean events as the nightly job writes them (clean/events/date=D/), 2,000 sites with
Zipf-sized traffic (the biggest ~20% of events), ~3 hits per visitor in visits cut by 30-minute
gaps, Zipf-distributed pages, sources, campaigns, browsers, OS and devices. Built once and cached
(bench/results/cache/serving-store/).

Two stores are loaded by the serving process's own loader (serving.store.sync), and the load
rate is reported beside the nightly job's (docs/benchmarks.md):
- all: every site (10M events);
- five: the same biggest site and the same small site, with three other sites: 1,995 tenants
  fewer, the same data for the two measured sites.

Each store is served as `pixel serve` serves it (uvicorn, one worker, its own process, whose RSS
is read from /proc) and called over loopback by one client; every query N times for the biggest
site and for a small one (rank 500 of 2,000). The first query after start is timed alone (cold).
Baseline, same run: GET /healthz.

    .venv/bin/python bench/serving_store.py [--requests 100]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EVENTS, DAYS, SITES = 10_000_000, 30, 2000
SMALL_RANK = 500
CACHE = ROOT / "bench" / "results" / "cache" / "serving-store"
FIRST_DAY = dt.date(2026, 10, 1)
PAGES = [f"/docs/page-{i}" for i in range(200)]
SOURCES = ["Google", "Direct / None", "Twitter", "Bing", "Facebook", "Internal"] + [
    f"ref-{i}.example" for i in range(40)
]
CAMPAIGNS = [""] * 8 + [f"campaign-{i}" for i in range(10)]
BROWSERS = ["Chrome", "Safari", "Firefox", "Edge", "Samsung Internet", "Opera", "Mobile Safari", "Chrome Mobile"]
OSES = ["Windows", "Mac OS X", "iOS", "Android", "Linux", "Chrome OS"]
DEVICES = ["desktop", "mobile", "tablet"]
COUNTRIES = ["US", "DE", "GB", "FR", "IN", "BR", "CA", "JP", "NL", "ES", "IT", "PL", "AU", "SE", ""]


def site_name(rank: int) -> str:
    return f"site{rank}.example"


def zipf_weights(n: int, s: float = 1.0):
    import numpy as np

    w = 1 / np.arange(1, n + 1) ** s
    return w / w.sum()


def day_events(day: dt.date, rng):
    """One day's clean events for every site, columnar (numpy), ~EVENTS / DAYS rows."""
    import numpy as np
    import pyarrow as pa

    from events.days import day_bounds
    from events.enrich import CLEAN_SCHEMA
    from events.schema import arrow_schema

    n_visits = EVENTS // DAYS // 3
    # Site sizes: Zipf with the biggest ~20% of the traffic.
    site = rng.choice(SITES, size=n_visits, p=zipf_weights(SITES, 0.93))
    visitor = rng.integers(0, 2**40, size=n_visits)
    hits = rng.geometric(1 / 3, size=n_visits).clip(1, 20)
    start = day_bounds(day)[0] + rng.integers(0, 86_400_000 - 3_600_000, size=n_visits)
    visit_of = np.repeat(np.arange(n_visits), hits)
    offset = np.concatenate([np.cumsum(rng.integers(5_000, 300_000, size=h)) - 5_000 for h in hits])
    n = len(visit_of)

    def pick(values, size, s=1.0):
        return np.array(values, dtype=object)[rng.choice(len(values), size=size, p=zipf_weights(len(values), s))]

    per_visit = {
        name: pick(values, n_visits)[visit_of]
        for name, values in (
            ("browser", BROWSERS),
            ("os", OSES),
            ("device", DEVICES),
            ("utm_campaign", CAMPAIGNS),
            ("country", COUNTRIES),
        )
    }
    source = pick(SOURCES, n_visits)[visit_of]
    first_hit = np.ones(n, dtype=bool)
    first_hit[1:] = visit_of[1:] != visit_of[:-1]
    source = np.where(first_hit, source, "Internal")
    columns = {name: np.full(n, "", dtype=object) for name, typ in CLEAN_SCHEMA if typ == "string"}
    columns.update(
        event_id=np.char.add("e", np.arange(n).astype(str)).astype(object),
        site=np.array([site_name(r + 1) for r in range(SITES)], dtype=object)[site[visit_of]],
        ts=(start[visit_of] + offset).clip(max=day_bounds(day)[1] - 1),
        event=np.where(rng.random(n) < 0.05, "Signup", "pageview").astype(object),
        path=pick(PAGES, n),
        host=np.full(n, "example.com", dtype=object),
        source=source,
        visitor_id=np.char.mod("%016x", visitor[visit_of]).astype(object),
        **per_visit,
    )
    columns["dedupe_key"] = columns["event_id"]
    columns["browser_major"] = np.full(n, "120", dtype=object)
    columns["is_bot"] = np.zeros(n, dtype=bool)
    columns["dnt"] = np.zeros(n, dtype=bool)
    columns["props"] = pa.array([[]] * n, type=pa.map_(pa.string(), pa.string()))  # no custom properties
    return pa.table({name: columns[name] for name, _ in CLEAN_SCHEMA}, schema=arrow_schema(CLEAN_SCHEMA))


def build() -> Path:
    """The lake with 30 closed days of clean events (cached), and a second with five sites."""
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from rich.progress import Progress

    from core.lake import layout
    from core.lake.storage import FileStorage
    from core.lake.watermark import advance_watermark

    marker = CACHE / "built.json"
    if marker.exists() and json.loads(marker.read_text()).get("events") == EVENTS:
        return CACHE
    shutil.rmtree(CACHE, ignore_errors=True)
    lakes = {"all": FileStorage(CACHE / "all" / "lake"), "five": FileStorage(CACHE / "five" / "lake")}
    keep = [site_name(r) for r in (1, 2, 3, 4, SMALL_RANK)]
    rng = np.random.default_rng(42)
    total = 0
    with Progress() as progress:
        task = progress.add_task("generating 30 days of clean events", total=DAYS)
        for i in range(DAYS):
            day = FIRST_DAY + dt.timedelta(days=i)
            table = day_events(day, rng)
            total += table.num_rows
            for name, storage in lakes.items():
                part = table if name == "all" else table.filter(pc.is_in(table.column("site"), pa_array(keep)))
                sink = io.BytesIO()
                pq.write_table(part, sink, compression="zstd")
                storage.write_atomic(f"{layout.day_dir(layout.CLEAN, day)}/part-00000.parquet", sink.getvalue())
                storage.write_atomic(
                    layout.run_summary(day), json.dumps({"date": str(day), "clean": part.num_rows}).encode()
                )
                advance_watermark(storage, day)
            progress.advance(task)
    marker.write_text(json.dumps({"events": EVENTS, "generated": total}))
    return CACHE


def pa_array(values):
    import pyarrow as pa

    return pa.array(values)


def load(name: str) -> tuple[int, float]:
    """Load a lake into a fresh store file with the serving process's loader: (events, seconds)."""
    from core.lake.storage import FileStorage
    from serving.store.embedded import EmbeddedStore
    from serving.store.sync import LakeSync

    db = CACHE / name / "data" / "store" / "hits.duckdb"
    db.unlink(missing_ok=True)
    store = EmbeddedStore(db)
    sync = LakeSync(FileStorage(CACHE / name / "lake"), store)
    sync.sync_once()
    store.db.execute("CHECKPOINT")
    store.close()
    return sync.loaded_events, sync.load_seconds


def serve(name: str, port: int) -> None:
    """The child: the serving app over one store, as `pixel serve` runs it (no Kafka ingestion)."""
    import uvicorn

    from core.settings import Settings
    from serving.app import create_app

    data = CACHE / name / "data"
    # The benchmark's one client sends thousands of requests: lift the per-client rate budget
    # (its own cost is measured by the Stats API's tests, not here).
    settings = Settings(
        data_dir=data,
        storage_url=f"file://{CACHE / name / 'lake'}",
        serving_port=port,
        api_rate_per_hour=1e9,
        api_rate_burst=1_000_000,
    )
    from serving.registry import Registry

    registry = Registry(settings.registry_database_url)
    for rank in (1, SMALL_RANK):
        if not any(s.domain == site_name(rank) for s in registry.list_sites()):
            registry.create_site(site_name(rank), public=True)
    uvicorn.run(create_app(settings, ingest=False), host="127.0.0.1", port=port, log_level="warning")


def queries(site: str) -> dict[str, dict]:
    span = [str(FIRST_DAY), str(FIRST_DAY + dt.timedelta(days=DAYS - 1))]
    base = {"site_id": site, "date_range": span}
    two = [["is", "visit:browser", ["Chrome"]], ["contains", "event:page", ["/docs/page-1"]]]
    return {
        "aggregate": {**base, "metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"]},
        "timeseries (days)": {**base, "metrics": ["visitors", "pageviews"], "dimensions": ["time:day"]},
        "breakdown event:page": {
            **base,
            "metrics": ["visitors", "pageviews"],
            "dimensions": ["event:page"],
            "pagination": {"limit": 10},
        },
        "breakdown visit:source": {
            **base,
            "metrics": ["visitors", "bounce_rate"],
            "dimensions": ["visit:source"],
            "pagination": {"limit": 10},
        },
        "2 filters": {**base, "metrics": ["visitors", "pageviews"], "filters": two},
        "3 filters": {
            **base,
            "metrics": ["visitors", "pageviews"],
            "filters": [*two, ["is_not", "visit:source", ["Direct / None"]]],
        },
        "2-dim breakdown + filter": {
            **base,
            "metrics": ["visitors"],
            "dimensions": ["visit:browser", "visit:device"],
            "filters": [["is", "event:name", ["pageview"]]],
            "pagination": {"limit": 10},
        },
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(name: str, requests: int, port: int) -> dict:
    import httpx

    from infra.tansu import wait_for_port

    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", name, "--port", str(port)],
        env={**os.environ, "PIXEL_LOG_LEVEL": "WARNING"},
    )
    try:
        wait_for_port("127.0.0.1", port, 60)
        url = f"http://127.0.0.1:{port}"
        out: dict = {"latency": {}}
        with httpx.Client(base_url=url, timeout=30) as client:
            started = time.perf_counter()
            first = client.post("/api/v2/query", json=queries(site_name(SMALL_RANK))["aggregate"])
            out["cold_ms"] = (time.perf_counter() - started) * 1000
            assert first.status_code == 200, first.text
            out["latency"]["GET /healthz (baseline)"] = timed(lambda: client.get("/healthz"), requests)
            for rank in (1, SMALL_RANK):
                for label, body in queries(site_name(rank)).items():
                    response = client.post("/api/v2/query", json=body)
                    assert response.status_code == 200 and response.json()["results"], (label, response.text)
                    out["latency"][f"{'biggest' if rank == 1 else 'small'}: {label}"] = timed(
                        lambda body=body: client.post("/api/v2/query", json=body), requests
                    )
        out["rss_mb"] = rss_mb(proc.pid)
        return out
    finally:
        proc.terminate()
        proc.wait(30)


def timed(call, n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        response = call()
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def main() -> None:
    global EVENTS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100, help="requests per query")
    parser.add_argument("--events", type=int, default=10_000_000, help="events over the 30 days")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=18_431, help=argparse.SUPPRESS)
    args = parser.parse_args()
    EVENTS = args.events
    if args.serve:
        serve(args.serve, args.port)
        return
    build()
    loaded = {name: load(name) for name in ("all", "five")}
    results = {name: measure(name, args.requests, args.port + i) for i, name in enumerate(("all", "five"))}
    events, seconds = loaded["all"]
    print(f"\nload into the store: {events:,} events in {seconds:.1f} s = {events / seconds:,.0f} events/s")
    print(f"serving RSS: {results['all']['rss_mb']:.0f} MB (2,000 sites), {results['five']['rss_mb']:.0f} MB (5 sites)")
    print(
        f"cold first query: {results['all']['cold_ms']:.0f} ms (2,000 sites), {results['five']['cold_ms']:.0f} ms (5)"
    )
    print("\n| query | 2,000 sites p50 ms | p95 ms | 5 sites p50 ms | p95 ms | p50 ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, (p50, p95) in results["all"]["latency"].items():
        f50, f95 = results["five"]["latency"][label]
        print(f"| {label} | {p50:.1f} | {p95:.1f} | {f50:.1f} | {f95:.1f} | {p50 / f50:.2f}x |")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "serving_store.json").write_text(
        json.dumps(
            {
                "events": events,
                "load_events_per_s": events / seconds,
                "latency_ms": {
                    label: {"p50": p50, "p95": p95} for label, (p50, p95) in results["all"]["latency"].items()
                },
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
