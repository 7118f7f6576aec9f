"""The embedded real-time store: finest-grain speed rows rolled up by minute, sketch unions, any
filter and grouping, offsets (fast, in memory)."""

import pytest

from events.sketches import RELATIVE_ERROR
from serving.analytics.query import parse_filters
from serving.realtime.duckdb_store import MINUTE, DuckDBStore
from tests.serving.conftest import agg_row

pytestmark = pytest.mark.fast
T = 1_795_507_200_000  # a whole minute


@pytest.fixture
def store():
    s = DuckDBStore()
    ids = [f"v{i}" for i in range(300)]
    s.ingest(
        [
            agg_row(T, 8, ids[:80], page="/", browser="Chrome"),
            agg_row(T + 10_000, 2, ids[50:60], page="/", browser="Chrome"),  # same minute and values: rolled up
            agg_row(T, 2, ids[80:100], page="/pricing", browser="Firefox"),
            agg_row(T + MINUTE, 7, ids[200:300], page="/pricing", browser="Chrome"),
            agg_row(T + MINUTE, 0, ids[200:210], page="/pricing", event="Signup", events=3),
            agg_row(T, 0, ["bot"], is_bot=True, events=40),  # bots: never in the numbers
            agg_row(T, 99, ["x"], site="b.example", page="/"),
        ]
    )
    return s


def test_rolls_up_by_minute(store):
    assert store.db.execute("SELECT count(*) FROM live_minute WHERE site = 'a.example'").fetchone()[0] == 5


def test_totals_sum_pageviews_and_events_and_union_visitors(store):
    c = store.totals("a.example", T, T + 2 * MINUTE)
    assert (c.pageviews, c.events) == (19, 22)
    assert c.visitors == pytest.approx(200, rel=3 * RELATIVE_ERROR)
    assert store.totals("a.example", T, T + MINUTE).pageviews == 10 + 2
    assert store.totals("nobody", T, T + MINUTE).pageviews == 0


def test_timeseries_fills_empty_buckets(store):
    series = store.timeseries("a.example", T - MINUTE, T + 3 * MINUTE, MINUTE)
    assert [b.count.pageviews for b in series] == [0, 12, 7, 0]
    with pytest.raises(ValueError):
        store.timeseries("a.example", T, T + MINUTE, 1000)


def test_top_ranks_by_events_with_visitors(store):
    top = store.top("a.example", "page", T, T + 2 * MINUTE)
    assert [(r.value, r.count.events) for r in top] == [("/pricing", 12), ("/", 10)]
    assert top[0].count.visitors == pytest.approx(120, rel=3 * RELATIVE_ERROR)
    with pytest.raises(ValueError, match="unknown dimension"):
        store.top("a.example", "page; DROP TABLE live_minute", T, T + MINUTE)


def test_any_filters_and_groups(store):
    chrome_pricing = parse_filters([["is", "visit:browser", ["Chrome"]], ["contains", "event:page", ["pric"]]])
    [(count,)] = [(c,) for (c,) in store.answer("a.example", T, T + 2 * MINUTE, [], chrome_pricing)]
    assert (count.pageviews, count.events) == (7, 7)
    by = {
        (b, p): c.pageviews for b, p, c in store.answer("a.example", T, T + 2 * MINUTE, ["visit:browser", "event:page"])
    }
    assert by == {("Chrome", "/"): 10, ("Firefox", "/pricing"): 2, ("Chrome", "/pricing"): 7, ("", "/pricing"): 0}
    hours = store.answer(
        "a.example", T, T + 2 * MINUTE, ["hour"], parse_filters([["is_not", "event:name", ["Signup"]]])
    )
    assert [(h, c.pageviews) for h, c in hours] == [("2026-11-24 08:00:00", 19)]


def test_realtime_visitors_covers_the_last_minutes(store):
    assert store.realtime_visitors("a.example", now_ms=T + MINUTE + 5_000, minutes=1) == pytest.approx(100, rel=0.05)
    assert store.realtime_visitors("a.example", now_ms=T + 30 * MINUTE) == 0


def test_offsets_commit_with_the_data(tmp_path):
    s = DuckDBStore(tmp_path / "rt.duckdb")
    s.ingest([agg_row(T, 1, ["a"])], {("pixel.agg", 0): 11})
    corrupt = dict(agg_row(T, 5, ["b"]), visitors_hll="not a sketch")
    with pytest.raises(Exception):  # noqa: B017 -- DuckDB's own error; fails while merging into the existing row, mid-transaction
        s.ingest([corrupt], {("pixel.agg", 0): 99})
    s.db.close()
    reopened = DuckDBStore(tmp_path / "rt.duckdb")
    assert reopened.offsets("pixel.agg") == {0: 11}  # neither the rows nor the offsets moved
    assert reopened.totals("a.example", T, T + MINUTE).pageviews == 1
