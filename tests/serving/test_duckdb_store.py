"""The embedded real-time store: rollup, sketch unions, queries, offsets (fast, in memory)."""

import pytest

from events.sketches import RELATIVE_ERROR, sketch_of
from serving.realtime.duckdb_store import MINUTE, DuckDBStore

pytestmark = pytest.mark.fast
T = 1_795_507_200_000  # a whole minute


def row(window, dimension, value, pageviews, visitors, site="a.example"):
    return {
        "window_start": window,
        "window_end": window + 10_000,
        "site": site,
        "dimension": dimension,
        "value": value,
        "pageviews": pageviews,
        "visitors_hll": sketch_of(visitors),
    }


@pytest.fixture
def store():
    s = DuckDBStore()
    ids = [f"v{i}" for i in range(300)]
    s.ingest(
        [
            row(T, "total", "", 10, ids[:100]),
            row(T + 10_000, "total", "", 5, ids[50:150]),  # same minute: rolled up
            row(T + MINUTE, "total", "", 7, ids[200:300]),
            row(T, "page", "/", 8, ids[:80]),
            row(T, "page", "/pricing", 2, ids[80:100]),
            row(T + MINUTE, "page", "/pricing", 7, ids[200:300]),
            row(T, "total", "", 99, ["x"], site="b.example"),
        ]
    )
    return s


def test_rolls_up_by_minute(store):
    assert (
        store.db.execute("SELECT count(*) FROM agg_minute WHERE dimension='total' AND site='a.example'").fetchone()[0]
        == 2
    )


def test_totals_sum_pageviews_and_union_visitors(store):
    c = store.totals("a.example", T, T + 2 * MINUTE)
    assert c.pageviews == 22
    assert c.visitors == pytest.approx(250, rel=3 * RELATIVE_ERROR)
    assert store.totals("a.example", T, T + MINUTE).pageviews == 15
    assert store.totals("nobody", T, T + MINUTE).pageviews == 0


def test_timeseries_fills_empty_buckets(store):
    series = store.timeseries("a.example", T - MINUTE, T + 3 * MINUTE, MINUTE)
    assert [b.count.pageviews for b in series] == [0, 15, 7, 0]
    with pytest.raises(ValueError):
        store.timeseries("a.example", T, T + MINUTE, 1000)


def test_top_ranks_by_pageviews_with_visitors(store):
    top = store.top("a.example", "page", T, T + 2 * MINUTE)
    assert [(r.value, r.count.pageviews) for r in top] == [("/pricing", 9), ("/", 8)]
    assert top[0].count.visitors == pytest.approx(120, rel=3 * RELATIVE_ERROR)
    with pytest.raises(ValueError, match="unknown dimension"):
        store.top("a.example", "page; DROP TABLE agg_minute", T, T + MINUTE)


def test_realtime_visitors_covers_the_last_minutes(store):
    assert store.realtime_visitors("a.example", now_ms=T + MINUTE + 5_000, minutes=1) == pytest.approx(100, rel=0.05)
    assert store.realtime_visitors("a.example", now_ms=T + 30 * MINUTE) == 0


def test_offsets_commit_with_the_data(tmp_path):
    s = DuckDBStore(tmp_path / "rt.duckdb")
    s.ingest([row(T, "total", "", 1, ["a"])], {("pixel.agg", 0): 11})
    corrupt = dict(row(T, "total", "", 5, ["b"]), visitors_hll="not a sketch")
    with pytest.raises(Exception):  # noqa: B017 -- DuckDB's own error; fails while merging into the existing row, mid-transaction
        s.ingest([corrupt], {("pixel.agg", 0): 99})
    s.db.close()
    reopened = DuckDBStore(tmp_path / "rt.duckdb")
    assert reopened.offsets("pixel.agg") == {0: 11}  # neither the rows nor the offsets moved
    assert reopened.totals("a.example", T, T + MINUTE).pageviews == 1
