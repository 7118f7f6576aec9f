"""The Lambda merge over real batch-view files and a real (DuckDB) real-time store: closed days
from the batch views, later time from the store, visitors by sketch union across the seam."""
from __future__ import annotations

import datetime as dt
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batch_layer.storage import FileStorage
from batch_layer.watermark import advance_watermark
from events.days import day_bounds
from events.sketches import RELATIVE_ERROR, sketch_of
from serving.batch.views import BatchViews
from serving.merge import DayRange, MergedStats
from serving.realtime.duckdb_store import DuckDBStore

pytestmark = pytest.mark.fast
D1, D2, D3 = dt.date(2026, 11, 20), dt.date(2026, 11, 21), dt.date(2026, 11, 22)
NOW = (day_bounds(D3)[0] + 12 * 3_600_000) / 1000  # D3 12:00 UTC: D3 is open


def ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def write_view(storage, view: str, day: dt.date, rows: list[dict]) -> None:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    storage.write_atomic(f"views/{view}/date={day}/part-00000.parquet", sink.getvalue())


def daily_row(dimension: str, value: str, pageviews: int, visitors: list[str], site: str = "a.example") -> dict:
    return {"site": site, "dimension": dimension, "value": value, "pageviews": pageviews,
            "visitors": len(visitors), "visitors_hll": sketch_of(visitors)}


def agg_row(ts: int, dimension: str, value: str, pageviews: int, visitors: list[str]) -> dict:
    return {"window_start": ts, "window_end": ts + 10_000, "site": "a.example", "dimension": dimension,
            "value": value, "pageviews": pageviews, "visitors_hll": sketch_of(visitors)}


@pytest.fixture
def stats(tmp_path):
    storage = FileStorage(tmp_path)
    write_view(storage, "daily", D1, [daily_row("total", "", 300, ids("d1-", 100)),
                                      daily_row("page", "/", 200, ids("d1-", 80)),
                                      daily_row("page", "/docs", 100, ids("d1-", 30)),
                                      daily_row("total", "", 9, ids("x", 3), site="b.example")])
    write_view(storage, "daily", D2, [daily_row("total", "", 500, ids("d2-", 200)),
                                      daily_row("page", "/docs", 500, ids("d2-", 200))])
    write_view(storage, "sessions", D1, [{"site": "a.example", "dimension": "total", "value": "", "visits": 120,
                                          "bounces": 60, "pageviews": 300, "duration_ms": 120 * 90_000}])
    write_view(storage, "sessions", D2, [{"site": "a.example", "dimension": "total", "value": "", "visits": 230,
                                          "bounces": 92, "pageviews": 500, "duration_ms": 230 * 30_000}])
    advance_watermark(storage, D2)
    store = DuckDBStore()
    d2, d3 = day_bounds(D2)[0], day_bounds(D3)[0]
    store.ingest([
        # D2 as the speed layer saw it: must never be used, the batch view closed D2.
        agg_row(d2 + 3_600_000, "total", "", 999, ids("zz", 50)),
        # D3, open: live numbers.
        agg_row(d3 + 3_600_000, "total", "", 40, ids("d3-", 20)),
        agg_row(d3 + 3_600_000, "page", "/", 30, ids("d3-", 15)),
        agg_row(d3 + 7_200_000, "total", "", 10, ids("d3-", 25)),  # 5 new visitors
        agg_row(d3 + 7_200_000, "page", "/new", 10, ids("d3-", 5)),
    ])
    return MergedStats(BatchViews(storage), store, clock=lambda: NOW)


def test_the_plan_splits_at_the_watermark(stats):
    plan = stats.plan(DayRange(D1, D3))
    assert plan.batch_days == [D1, D2] and plan.live == (day_bounds(D3)[0], int(NOW * 1000) + 1)
    assert stats.plan(DayRange(D1, D2)).live is None
    assert stats.plan(DayRange(D3, D3)).batch_days == []


def test_closed_days_are_exact(stats):
    count = stats.aggregate("a.example", DayRange(D1, D2))
    assert (count.pageviews, count.visitors) == (800, 300)  # exact, the speed view's D2 ignored
    assert stats.aggregate("b.example", DayRange(D1, D2)).pageviews == 9
    assert stats.aggregate("nobody.example", DayRange(D1, D2)).pageviews == 0


def test_across_the_seam_pageviews_add_and_visitors_union(stats):
    count = stats.aggregate("a.example", DayRange(D1, D3))
    assert count.pageviews == 300 + 500 + 50
    assert abs(count.visitors - 325) <= 3 * RELATIVE_ERROR * 325


def test_daily_series_takes_each_day_from_its_view(stats):
    series = stats.daily_series("a.example", DayRange(D1, D3))
    assert [(d, c.pageviews) for d, c in series] == [(D1, 300), (D2, 500), (D3, 50)]
    assert [c.visitors for _, c in series][:2] == [100, 200]


def test_breakdown_merges_values_across_days_and_the_seam(stats):
    pages = {r.value: r.count for r in stats.breakdown("a.example", "page", DayRange(D1, D3))}
    assert {v: c.pageviews for v, c in pages.items()} == {"/": 230, "/docs": 600, "/new": 10}
    assert abs(pages["/docs"].visitors - 230) <= 3 * RELATIVE_ERROR * 230  # a union: the range is open
    top = stats.breakdown("a.example", "page", DayRange(D1, D2), limit=1)
    assert [(r.value, r.count.pageviews, r.count.visitors) for r in top] == [("/docs", 600, 230)]
    with pytest.raises(ValueError, match="unknown dimension"):
        stats.breakdown("a.example", "total", DayRange(D1, D2))


def test_visits_only_where_every_day_is_closed(stats):
    visits = stats.visits("a.example", DayRange(D1, D2))
    assert (visits.visits, visits.bounce_rate, visits.visit_duration_s) == (350, 43, 51)  # (120*90 s + 230*30 s) / 350 visits
    assert stats.visits("a.example", DayRange(D2, D3)) is None


def test_realtime_visitors_come_from_the_store(stats):
    assert stats.realtime_visitors("a.example", minutes=5) == 0  # nothing in the last 5 minutes
    assert stats.realtime_visitors("a.example", minutes=11 * 60) == 25


def test_a_backwards_range_is_refused():
    with pytest.raises(ValueError, match="before it starts"):
        DayRange(D2, D1)
