"""The real-time store on Apache Druid, through pydruid's DB-API (Druid SQL).

Druid ingests pixel.agg with the Kafka supervisor in infra/druid/ (rollup by minute at the speed
rows' finest grain, HLLSketchMerge on visitors_hll), so queries here mirror the embedded DuckDB
store's: any filter tree and grouping by properties or time.

SQL text comes from closed sets (column names from events.properties, fixed functions); values
travel only as parameters (pydruid quotes them), and pydruid's one unquoted value ("*") is refused.
Druid matches ``matches`` filters with Java regular expressions (not RE2), so every query also
carries Druid's own query timeout (the ``timeout`` query context): Druid stops it there.
"""

from __future__ import annotations

import base64

from events.sketches import estimate
from serving.druid.sql import DATASOURCE, RANGE, filter_sql, group_sql
from serving.query import StoreUnavailable
from serving.realtime.interface import (
    MINUTE,
    Bucket,
    Count,
    Ranked,
    check_dimension,
    check_interval,
    realtime_range,
    sum_counts,
)


def iso_period(interval_ms: int) -> str:
    check_interval(interval_ms)
    minutes = interval_ms // MINUTE
    if minutes % 1440 == 0:
        return f"P{minutes // 1440}D"
    if minutes % 60 == 0:
        return f"PT{minutes // 60}H"
    return f"PT{minutes}M"


def _sketch(value) -> str:
    """Druid returns HLL sketches as base64 strings (or bytes, depending on the result format)."""
    if not value:
        return ""
    return base64.b64encode(value).decode() if isinstance(value, bytes) else str(value)


def _count(pageviews, events, sketch) -> Count:
    """A Druid row's sums and (already merged) sketch as a Count."""
    sketch = _sketch(sketch)
    return Count(int(pageviews or 0), estimate([sketch]), sketch, int(events or 0))


class DruidStore:
    def __init__(self, connection=None, host: str = "localhost", port: int = 8082, timeout_s: float = 5.0):
        if connection is None:
            from pydruid.db import connect

            context = {"timeout": int(timeout_s * 1000)}  # ms; Druid answers 504 past it
            connection = connect(host=host, port=port, path="/druid/v2/sql/", scheme="http", context=context)
        self.connection = connection

    def run(self, sql: str, params: dict) -> list[tuple]:
        """One Druid SQL statement with named parameters (strings and integers only)."""
        for name, value in params.items():
            if not isinstance(value, (str, int)) or value == "*":
                raise ValueError(f"refusing parameter {name}={value!r}")
        try:
            cursor = self.connection.cursor()
            cursor.execute(sql, params)
            return cursor.fetchall()
        except Exception as exc:  # pydruid's errors: Druid down, over its timeout (504), refused
            raise StoreUnavailable(f"Druid did not answer: {str(exc)[:300]}") from exc

    def answer(self, site: str, start: int, end: int, groups: list[str], filters=None) -> list[tuple]:
        """People's rows of a site in [start, end) grouped by property names or time grains
        (hour, day, week, month, minute) under a filter tree: per group, its values and a Count."""
        params: dict = {"site": site, "start": start, "end": end}
        exprs = [group_sql(g, params) for g in groups]
        where = RANGE + (f" AND {filter_sql(filters, params)}" if filters is not None else "")
        select = [*exprs, "SUM(pageviews)", "SUM(events)", "DS_HLL(visitors_hll)"]
        sql = f'SELECT {", ".join(select)} FROM "{DATASOURCE}" WHERE {where}'
        if exprs:
            sql += f" GROUP BY {', '.join(str(i + 1) for i in range(len(exprs)))}"
        n = len(exprs)
        return [(*row[:n], _count(*row[n:])) for row in self.run(sql, params)]

    def site_totals(self, start: int, end: int) -> dict[str, Count]:
        """Every site's people in [start, end), speed or batch rows (restatements)."""
        sql = (
            f'SELECT site, SUM(pageviews), SUM(events), DS_HLL(visitors_hll) FROM "{DATASOURCE}" '
            "WHERE is_bot = 'false' AND __time >= MILLIS_TO_TIMESTAMP(%(start)s) "
            "AND __time < MILLIS_TO_TIMESTAMP(%(end)s) GROUP BY 1"
        )
        return {site: _count(*rest) for site, *rest in self.run(sql, {"start": start, "end": end})}

    def totals(self, site: str, start: int, end: int) -> Count:
        rows = self.answer(site, start, end, [])
        return rows[0][0] if rows else sum_counts([])

    def timeseries(self, site: str, start: int, end: int, interval_ms: int) -> list[Bucket]:
        check_interval(interval_ms)
        found: dict[int, list[Count]] = {}
        for minute, count in self.answer(site, start, end, ["minute"]):
            found.setdefault(start + (int(minute) - start) // interval_ms * interval_ms, []).append(count)
        return [Bucket(b, sum_counts(found.get(b, []))) for b in range(start, end, interval_ms)]

    def top(self, site: str, dimension: str, start: int, end: int, limit: int = 10) -> list[Ranked]:
        check_dimension(dimension)
        rows = self.answer(site, start, end, [_DIMENSION_PROPERTY[dimension]])
        return [Ranked(str(v), c) for v, c in sorted(rows, key=lambda r: (-r[1].events, str(r[0])))[:limit]]

    def realtime_visitors(self, site: str, now_ms: int, minutes: int = 5) -> int:
        return self.totals(site, *realtime_range(now_ms, minutes)).visitors


_DIMENSION_PROPERTY = {
    "page": "event:page",
    "source": "visit:source",
    "browser": "visit:browser",
    "os": "visit:os",
    "device": "visit:device",
}
