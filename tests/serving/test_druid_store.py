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
