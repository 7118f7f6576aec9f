"""Shared fixture: batch-view files for two closed days and a DuckDB real-time store holding the
open third day (and a stale speed view of a closed day, which must never be used)."""

from __future__ import annotations

import datetime as dt
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.lake.storage import FileStorage
from core.lake.watermark import advance_watermark
from events.days import day_bounds
from events.sketches import sketch_of
from serving.batch.views import BatchViews
from serving.merge import MergedStats
from serving.realtime.duckdb_store import DuckDBStore

D1, D2, D3 = dt.date(2026, 11, 20), dt.date(2026, 11, 21), dt.date(2026, 11, 22)
NOW = (day_bounds(D3)[0] + 12 * 3_600_000) / 1000  # D3 12:00 UTC: D3 is open


def ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def write_view(storage, view: str, day: dt.date, rows: list[dict]) -> None:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    storage.write_atomic(f"views/{view}/date={day}/part-00000.parquet", sink.getvalue())


def daily_row(dimension: str, value: str, pageviews: int, visitors: list[str], site: str = "a.example") -> dict:
    return {
        "site": site,
        "dimension": dimension,
        "value": value,
        "pageviews": pageviews,
        "visitors": len(visitors),
        "visitors_hll": sketch_of(visitors),
    }


def agg_row(ts: int, dimension: str, value: str, pageviews: int, visitors: list[str]) -> dict:
    return {
        "window_start": ts,
        "window_end": ts + 10_000,
        "site": "a.example",
        "dimension": dimension,
        "value": value,
        "pageviews": pageviews,
        "visitors_hll": sketch_of(visitors),
    }


@pytest.fixture
def stats(tmp_path):
    storage = FileStorage(tmp_path)
    write_view(
        storage,
        "daily",
        D1,
        [
            daily_row("total", "", 300, ids("d1-", 100)),
            daily_row("page", "/", 200, ids("d1-", 80)),
            daily_row("page", "/docs", 100, ids("d1-", 30)),
            daily_row("total", "", 9, ids("x", 3), site="b.example"),
        ],
    )
    write_view(
        storage,
        "daily",
        D2,
        [daily_row("total", "", 500, ids("d2-", 200)), daily_row("page", "/docs", 500, ids("d2-", 200))],
    )
    write_view(
        storage,
        "sessions",
        D1,
        [
            {
                "site": "a.example",
                "dimension": "total",
                "value": "",
                "visits": 120,
                "bounces": 60,
                "pageviews": 300,
                "duration_ms": 120 * 90_000,
            }
        ],
    )
    write_view(
        storage,
        "sessions",
        D2,
        [
            {
                "site": "a.example",
                "dimension": "total",
                "value": "",
                "visits": 230,
                "bounces": 92,
                "pageviews": 500,
                "duration_ms": 230 * 30_000,
            }
        ],
    )
    advance_watermark(storage, D2)
    store = DuckDBStore()
    d2, d3 = day_bounds(D2)[0], day_bounds(D3)[0]
    store.ingest(
        [
            # D2 as the speed layer saw it: must never be used, the batch view closed D2.
            agg_row(d2 + 3_600_000, "total", "", 999, ids("zz", 50)),
            # D3, open: live numbers.
            agg_row(d3 + 3_600_000, "total", "", 40, ids("d3-", 20)),
            agg_row(d3 + 3_600_000, "page", "/", 30, ids("d3-", 15)),
            agg_row(d3 + 7_200_000, "total", "", 10, ids("d3-", 25)),  # 5 new visitors
            agg_row(d3 + 7_200_000, "page", "/new", 10, ids("d3-", 5)),
        ]
    )
    return MergedStats(BatchViews(storage), store, clock=lambda: NOW)
