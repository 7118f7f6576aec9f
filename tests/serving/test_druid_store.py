"""The Druid store's SQL and the supervisor spec. No Druid can run here: queries go to a
RecordingConnection (a MOCK DB-API connection that records SQL and returns canned rows); what
is exercised is the SQL text, its parameters, pydruid's escaping and our result handling; what
is not is Druid itself (planning, HLLSketchMerge at ingestion, segment handoff)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydruid.db.api import apply_parameters

from core.settings import Settings
from events.aggregate import AGG_COLUMNS
from events.sketches import LG_K, sketch_of
from serving.realtime.druid_store import DATASOURCE, DruidStore, iso_period

pytestmark = pytest.mark.fast
SPEC = json.loads((Path(__file__).resolve().parents[2] / "infra/druid/pixel-agg-supervisor.json").read_text())


class RecordingConnection:
    """MOCK of a pydruid DB-API connection: records (sql, params), answers canned rows."""

    def __init__(self, rows):
        self.rows, self.calls = rows, []

    def cursor(self):
        conn = self

        class Cursor:
            def execute(self, sql, params):
                conn.calls.append((sql, params))
                self.rendered = apply_parameters(sql, params)  # what pydruid would send

            def fetchall(self):
                return conn.rows

        return Cursor()


def test_totals_sql_and_result():
    sketch = sketch_of(["a", "b", "c"])
    conn = RecordingConnection([(12, 15, sketch)])
    c = DruidStore(conn).totals("a.example", 1000, 2000)
    assert (c.pageviews, c.events, c.visitors, c.visitors_hll) == (12, 15, 3, sketch)
    sql, params = conn.calls[0]
    assert params == {"site": "a.example", "start": 1000, "end": 2000}
    assert f'FROM "{DATASOURCE}"' in sql and "DS_HLL(visitors_hll)" in sql and "is_bot = 'false'" in sql


def test_site_totals_for_the_restatement_log():
    a, b = sketch_of(["x", "y"]), sketch_of(["z"])
    conn = RecordingConnection([("a.example", 12, 15, a), ("b.example", 3, 3, b)])
    totals = DruidStore(conn).site_totals(1000, 2000)
    assert {site: (c.pageviews, c.visitors) for site, c in totals.items()} == {
        "a.example": (12, 2),
        "b.example": (3, 1),
    }
    sql, params = conn.calls[0]
    assert params == {"start": 1000, "end": 2000} and "GROUP BY 1" in sql and "is_bot = 'false'" in sql


def test_hostile_values_stay_literals():
    conn = RecordingConnection([(0, 0, None)])
    DruidStore(conn).totals("x' OR '1'='1", 0, 1)
    rendered = apply_parameters(*conn.calls[0])
    assert "site = 'x'' OR ''1''=''1'" in rendered
    with pytest.raises(ValueError, match="refusing"):
        DruidStore(conn).totals("*", 0, 1)  # pydruid would paste * unquoted
    with pytest.raises(ValueError, match="unknown dimension"):
        DruidStore(conn).top("a", "page) OR (1=1", 0, 1)


def test_timeseries_fills_buckets_from_minutes():
    conn = RecordingConnection([(60_000, 5, 5, sketch_of(["a"]))])
    series = DruidStore(conn).timeseries("a", 0, 180_000, 60_000)
    assert [b.count.pageviews for b in series] == [0, 5, 0]
    assert "TIME_FLOOR(__time, 'PT1M')" in conn.calls[0][0]
    assert [iso_period(m * 60_000) for m in (1, 15, 60, 1440)] == ["PT1M", "PT15M", "PT1H", "P1D"]


def test_top_groups_by_the_dimensions_column():
    conn = RecordingConnection([("/", 9, 9, sketch_of(["a", "b"])), ("/x", 1, 1, sketch_of(["a"]))])
    top = DruidStore(conn).top("a", "page", 0, 1, limit=1)
    assert [(r.value, r.count.pageviews, r.count.visitors) for r in top] == [("/", 9, 2)]
    assert "GROUP BY 1" in conn.calls[0][0] and '"page"' in conn.calls[0][0]


def test_any_filter_tree_and_grouping_compile_to_druid_sql_with_bound_values():
    from serving.analytics.query import parse_filters

    conn = RecordingConnection([])
    tree = parse_filters(
        [
            ["is", "visit:browser", ["Chrome", "Safari"]],
            ["or", [["contains", "event:page", ["/blog"]], ["matches_not", "visit:source", ["^G"]]]],
        ]
    )
    DruidStore(conn).answer("a", 0, 1, ["day", "visit:utm_campaign"], tree)
    sql, params = conn.calls[0]
    assert (
        '"browser" IN (%(p0)s, %(p1)s)' in sql
        and 'CONTAINS_STRING("page", %(p2)s)' in sql
        and '(NOT (REGEXP_LIKE("source", %(p3)s)))' in sql
    )
    assert "TIME_FORMAT(TIME_FLOOR(__time, 'P1D'), 'yyyy-MM-dd')" in sql and '"utm_campaign"' in sql
    assert params == {"site": "a", "start": 0, "end": 1, "p0": "Chrome", "p1": "Safari", "p2": "/blog", "p3": "^G"}
    rendered = apply_parameters(sql, params)
    assert "'Chrome'" in rendered and "'^G'" in rendered


def test_supervisor_spec_matches_the_aggregate_schema():
    schema = SPEC["spec"]["dataSchema"]
    assert schema["dataSource"] == DATASOURCE
    assert SPEC["spec"]["ioConfig"]["topic"] == Settings().agg_topic
    assert SPEC["spec"]["ioConfig"]["consumerProperties"]["isolation.level"] == "read_committed"
    used = {
        schema["timestampSpec"]["column"],
        *schema["dimensionsSpec"]["dimensions"],
        *(m["fieldName"] for m in schema["metricsSpec"]),
    }
    assert used == set(AGG_COLUMNS) - {"window_end"}  # window_end is implied by the rollup
    hll = next(m for m in schema["metricsSpec"] if m["type"] == "HLLSketchMerge")
    assert (hll["name"], hll["lgK"], hll["tgtHllType"]) == ("visitors_hll", LG_K, "HLL_4")
    assert schema["granularitySpec"]["queryGranularity"] == "MINUTE"  # same rollup as DuckDB


# --- closed days: the per-visit Druid SQL (its answers: test_analytics.py on EmulatedDruid) ------
SHAPES = {
    "aggregate": {"metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"]},
    "timeseries by hour": {"metrics": ["visitors"], "dimensions": ["time:hour"]},
    "timeseries by day": {"metrics": ["pageviews"], "dimensions": ["time:day"]},
    "timeseries by week": {"metrics": ["events"], "dimensions": ["time:week"]},
    "timeseries by month": {"metrics": ["visits"], "dimensions": ["time:month"]},
    "breakdown": {
        "metrics": ["visitors", "percentage"],
        "dimensions": ["event:page"],
        "order_by": [["visitors", "desc"]],
    },
    "two dimensions": {"metrics": ["views_per_visit"], "dimensions": ["visit:entry_page", "visit:browser"]},
    "three filters": {
        "metrics": ["visitors"],
        "dimensions": ["visit:source"],
        "filters": [
            ["is", "visit:browser", ["Chrome", "x') OR 1=1 --"]],
            ["contains", "event:page", ["/blog"]],
            ["or", [["matches", "visit:exit_page", ["^/p"]], ["not", ["is", "visit:utm_source", ["news"]]]]],
        ],
        "pagination": {"limit": 5, "offset": 10},
        "include": {"total_rows": True},
    },
}


@pytest.mark.parametrize("shape", SHAPES, ids=list(SHAPES))
def test_closed_days_sql_for_every_query_shape(shape):
    import datetime as dt

    from serving.analytics.query import parse_v2
    from serving.druid.sql import METRIC_SQL, compile_closed

    body = {"site_id": "a.example", "date_range": ["2026-11-01", "2026-11-30"], **SHAPES[shape]}
    query = parse_v2(body, dt.date(2026, 12, 4))
    sql, count_sql, params = compile_closed(query, query.first, query.last)
    rendered = apply_parameters(sql, params)  # as pydruid sends it
    inner = rendered[rendered.index("FROM (") :]
    assert f'FROM "{DATASOURCE}"' in inner and "is_bot = 'false'" in inner and "site = 'a.example'" in inner
    # Every group is cut per visit first; each metric is its per-visit aggregate.
    groups = len(query.dimensions)
    assert f"GROUP BY {', '.join(str(i + 1) for i in range(groups + 1))})" in inner
    assert all(f"{METRIC_SQL[m]} AS m{i}" in sql for i, m in enumerate(query.metrics))
    utc_ms = lambda *day: int(dt.datetime(*day, tzinfo=dt.UTC).timestamp() * 1000)  # noqa: E731
    assert (params["start"], params["end"]) == (utc_ms(2026, 11, 1), utc_ms(2026, 12, 1))
    if groups:
        assert "ORDER BY " in sql and "LIMIT %(limit)s OFFSET %(offset)s" in sql
        assert (params["limit"], params["offset"]) == (query.limit, query.offset)
    if shape == "three filters":
        assert "'x'') OR 1=1 --'" in rendered  # a value stays a quoted literal
        assert "REGEXP_LIKE(\"exit_page\", '^/p')" in rendered and "CONTAINS_STRING(\"page\", '/blog')" in rendered
        assert count_sql is not None and apply_parameters(count_sql, params).startswith("SELECT COUNT(*) FROM (")
    else:
        assert count_sql is None


def test_druid_failures_are_a_503_that_says_so():
    from serving.query import StoreUnavailable

    class Down:
        def cursor(self):
            raise ConnectionError("Connection refused: localhost:8082")

    with pytest.raises(StoreUnavailable, match="Druid did not answer: Connection refused"):
        DruidStore(Down()).totals("a", 0, 1)

    import datetime as dt

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from serving.analytics.engine import Analytics
    from serving.analytics.router import v2_router
    from serving.druid.closed import DruidClosed
    from serving.stats_api import unavailable_response

    app = FastAPI()
    closed = DruidClosed(DruidStore(Down()))
    analytics = Analytics(closed, lambda: dt.date(2026, 12, 3), None, clock=lambda: 1_796_515_200)
    app.include_router(v2_router(analytics, today=lambda: dt.date(2026, 12, 4), site_access=lambda *_: None))
    app.add_exception_handler(StoreUnavailable, unavailable_response)
    response = TestClient(app).post("/api/v2/query", json={"site_id": "a", "metrics": ["visits"], "date_range": "7d"})
    assert response.status_code == 503 and "Druid did not answer" in response.json()["error"]
    assert response.headers["retry-after"] == "5"


def test_an_empty_closed_range_is_zeros():
    import datetime as dt

    from serving.analytics.query import parse_v2
    from serving.druid.closed import DruidClosed

    query = parse_v2({"site_id": "a", "metrics": ["visitors", "pageviews"], "date_range": "7d"}, dt.date(2026, 12, 4))
    assert DruidClosed(DruidStore(RecordingConnection([]))).rows(query, query.first, query.last) == [(0, 0, 1)]
