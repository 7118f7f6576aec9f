"""Shared fixtures: closed days as the nightly job leaves them (clean events, a run summary, the
watermark) and speed rows in a DuckDB real-time store for the open day (and a stale speed view
of a closed day, which must never be used)."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import threading

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import uvicorn

from core.lake.storage import FileStorage
from core.lake.watermark import advance_watermark
from events.channels import channel_of
from events.days import day_bounds
from events.enrich import CLEAN_SCHEMA
from events.properties import LIVE_COLUMNS
from events.schema import arrow_schema
from events.sketches import sketch_of
from serving.analytics.closed import EmbeddedClosed
from serving.analytics.engine import Analytics
from serving.app import create_app
from serving.realtime.duckdb_store import DuckDBStore
from serving.registry import Registry
from serving.store.embedded import EmbeddedStore
from serving.store.sync import LakeSync
from tests.harness import free_port, make_settings, wait_until

D1, D2, D3 = dt.date(2026, 11, 20), dt.date(2026, 11, 21), dt.date(2026, 11, 22)
NOW = (day_bounds(D3)[0] + 12 * 3_600_000) / 1000  # D3 12:00 UTC: D3 is open
MINUTE = 60_000


def ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def clean_event(
    site,
    ts,
    visitor,
    path,
    source="Direct / None",
    browser="Chrome",
    name="pageview",
    campaign="",
    country="",
    props=None,
):
    """A clean event (events.enrich.CLEAN_SCHEMA) with the fields the store reads."""
    source_class = {"Direct / None": "direct", "Internal": "internal"}.get(source, "other")
    row = {column: "" for column, typ in CLEAN_SCHEMA if typ == "string"}
    row.update(
        event_id=f"{site}{ts}{visitor}{name}",
        dedupe_key=f"{site}{ts}{visitor}{name}",
        ts=ts,
        site=site,
        event=name,
        path=path,
        host=site,
        source=source,
        channel=channel_of(source, source_class, "", campaign, ""),
        browser=browser,
        os="Linux",
        device="desktop",
        utm_campaign=campaign,
        country=country,
        props=props or {},
        visitor_id=visitor or None,
        is_bot=False,
        dnt=False,
    )
    return row


def close_day(storage: FileStorage, day: dt.date, events: list[dict], run: str = "1") -> None:
    """What the nightly job leaves for a day: its clean events, its run summary, the watermark."""
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(events, schema=arrow_schema(CLEAN_SCHEMA)), sink)
    storage.write_atomic(f"clean/events/date={day}/part-00000.parquet", sink.getvalue())
    storage.write_atomic(f"views/_runs/date={day}.json", json.dumps({"date": str(day), "run": run}).encode())
    advance_watermark(storage, day)


def agg_row(ts: int, pageviews: int, visitors: list[str], site="a.example", is_bot=False, events=None, **props) -> dict:
    """A speed row (events.aggregate.AGG_SCHEMA): a window's events of one combination of
    property values (``props``: page="/", source=..., the others empty)."""
    row = {
        "window_start": ts,
        "window_end": ts + 10_000,
        "site": site,
        "is_bot": is_bot,
        **{column: "" for column in LIVE_COLUMNS},
        "pageviews": pageviews,
        "events": pageviews if events is None else events,
        "visitors_hll": sketch_of(visitors),
    }
    row["event"] = "" if is_bot else "pageview"
    row.update(props)
    return row


def day1() -> list[dict]:
    """a.example on D1: 4 visitors, 5 visits, 7 pageviews and 1 custom event (numbers in test_stats_api)."""
    t = day_bounds(D1)[0]
    a = "a.example"
    return [
        clean_event(a, t + 10 * MINUTE, "v1", "/", "Google"),
        clean_event(a, t + 11 * MINUTE, "v1", "/docs", "Internal"),
        clean_event(a, t + 60 * MINUTE, "v2", "/pricing", "Twitter", "Firefox"),
        clean_event(a, t + 120 * MINUTE, "v3", "/"),
        clean_event(a, t + 125 * MINUTE, "v3", "/blog/a", "Internal"),
        clean_event(a, t + 305 * MINUTE, "v3", "/blog/b"),  # 3 hours later: a second visit
        clean_event(a, t + 180 * MINUTE, "v4", "/pricing", "Google", "Safari", name="Signup", props={"plan": "pro"}),
        clean_event(a, t + 180 * MINUTE + 30_000, "v4", "/pricing", "Internal", "Safari"),
        *(clean_event("b.example", t + i * MINUTE, "b1", "/") for i in range(3)),
    ]


def day2() -> list[dict]:
    """a.example on D2: 5 visitors with two pageviews of /docs a minute apart, from Google."""
    t = day_bounds(D2)[0]
    return [
        clean_event("a.example", t + i * 600_000 + k * MINUTE, f"w{i}", "/docs", "Google" if k == 0 else "Internal")
        for i in range(5)
        for k in range(2)
    ]


@pytest.fixture
def world(tmp_path):
    """(storage, sync, live store, analytics): D1 and D2 closed, D3 open (speed rows)."""
    storage = FileStorage(tmp_path / "lake")
    close_day(storage, D1, day1())
    close_day(storage, D2, day2())
    live = DuckDBStore()
    d2, d3 = day_bounds(D2)[0], day_bounds(D3)[0]
    live.ingest(
        [
            agg_row(d2 + 3_600_000, 999, ids("zz", 50), page="/docs"),  # D2 as the speed layer saw it: never used
            agg_row(d3 + 3_600_000, 30, ids("d3-", 15), page="/", source="Google"),
            agg_row(d3 + 3_600_000, 10, [f"d3-{i}" for i in range(15, 20)], page="/docs"),
            agg_row(d3 + 7_200_000, 10, [f"d3-{i}" for i in range(20, 25)], page="/new"),
            agg_row(d3 + 7_200_000, 0, ["d3-20"], page="/new", event="Signup", events=2),  # custom events
            agg_row(d3 + 7_200_000, 0, ids("bot", 3), is_bot=True, events=7),  # bots: never in the numbers
        ]
    )
    store = EmbeddedStore()
    sync = LakeSync(storage, store)
    sync.sync_once()
    return storage, sync, live, Analytics(EmbeddedClosed(store), lambda: sync.watermark, live, clock=lambda: NOW)


@pytest.fixture
def server(tmp_path):
    """`pixel serve`'s app on a free port over two closed days: a.example public, b.example
    private; (its URL, a token for b.example)."""
    settings = make_settings(tmp_path / "data", serving_port=free_port())
    storage = FileStorage(settings.data_dir)
    close_day(storage, D1, day1())
    close_day(storage, D2, day2())
    DuckDBStore(settings.realtime_db).db.close()  # an empty real-time store file
    registry = Registry(settings.registry_database_url)
    registry.create_site("a.example", public=True)
    registry.create_site("b.example")
    token = registry.create_token("b.example")
    with serving(settings, D2) as base:
        yield base, token


@contextlib.contextmanager
def serving(settings, watermark: dt.date):
    """`pixel serve`'s app on settings.serving_port, once the closed days up to ``watermark`` are
    in its store; its URL."""
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, ingest=False), host="127.0.0.1", port=settings.serving_port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{settings.serving_port}"
    try:
        wait_until(lambda: server.started, 30, message="the serving app started")
        wait_until(
            lambda: httpx.get(f"{base}/healthz").json()["batch_watermark"] == str(watermark),
            30,
            message="the closed days loaded into the store",
        )
        yield base
    finally:
        server.should_exit = True
        thread.join(10)
