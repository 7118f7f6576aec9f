"""The real-time store on Apache Druid, through pydruid's DB-API (Druid SQL).

Druid ingests pixel.agg with the Kafka supervisor in infra/druid/ (rollup by minute,
HLLSketchMerge on visitors_hll), so queries here mirror the embedded DuckDB store's.

SQL text is fixed; values travel only as parameters (pydruid quotes them), dimensions are
checked against the known set, and pydruid's one unquoted value ("*") is refused.
"""

from __future__ import annotations

import base64

from events.sketches import estimate
from serving.realtime.interface import (
    MINUTE,
    Bucket,
    Count,
    Ranked,
    check_dimension,
    check_interval,
    realtime_range,
)

DATASOURCE = "pixel_agg"
_RANGE = "site = %(site)s AND __time >= MILLIS_TO_TIMESTAMP(%(start)s) AND __time < MILLIS_TO_TIMESTAMP(%(end)s)"
TOTALS_SQL = f"SELECT SUM(pageviews), DS_HLL(visitors_hll) FROM \"{DATASOURCE}\" WHERE dimension = 'total' AND {_RANGE}"
TIMESERIES_SQL = (
    f"SELECT TIMESTAMP_TO_MILLIS(TIME_FLOOR(__time, %(period)s, MILLIS_TO_TIMESTAMP(%(origin)s))) AS b, "
    f'SUM(pageviews), DS_HLL(visitors_hll) FROM "{DATASOURCE}" '
    f"WHERE dimension = 'total' AND {_RANGE} GROUP BY 1 ORDER BY 1"
)
TOP_SQL = (
    f'SELECT "value", SUM(pageviews) AS pv, DS_HLL(visitors_hll) FROM "{DATASOURCE}" '
    f"WHERE dimension = %(dimension)s AND {_RANGE} "
    'GROUP BY "value" ORDER BY pv DESC, "value" LIMIT %(limit)s'
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


def _count(pageviews, sketch) -> Count:
    """A Druid row's pageviews and (already merged) sketch as a Count."""
    sketch = _sketch(sketch)
    return Count(int(pageviews or 0), estimate([sketch]), sketch)


class DruidStore:
    def __init__(self, connection=None, host: str = "localhost", port: int = 8082):
        if connection is None:
            from pydruid.db import connect

            connection = connect(host=host, port=port, path="/druid/v2/sql/", scheme="http")
        self.connection = connection

    def _query(self, sql: str, params: dict) -> list[tuple]:
        for name, value in params.items():
            if not isinstance(value, (str, int)) or value == "*":
                raise ValueError(f"refusing parameter {name}={value!r}")
        cursor = self.connection.cursor()
        cursor.execute(sql, params)
        return cursor.fetchall()

    def totals(self, site: str, start: int, end: int) -> Count:
        rows = self._query(TOTALS_SQL, {"site": site, "start": start, "end": end})
        return _count(*(rows[0] if rows else (0, "")))

    def timeseries(self, site: str, start: int, end: int, interval_ms: int) -> list[Bucket]:
        period = iso_period(interval_ms)
        rows = self._query(
            TIMESERIES_SQL, {"site": site, "start": start, "end": end, "period": period, "origin": start}
        )
        found = {int(b): (pv, s) for b, pv, s in rows}
        return [Bucket(b, _count(*found.get(b, (0, "")))) for b in range(start, end, interval_ms)]

    def top(self, site: str, dimension: str, start: int, end: int, limit: int = 10) -> list[Ranked]:
        check_dimension(dimension)
        rows = self._query(
            TOP_SQL, {"site": site, "dimension": dimension, "start": start, "end": end, "limit": int(limit)}
        )
        return [Ranked(str(v), _count(pv, s)) for v, pv, s in rows]

    def realtime_visitors(self, site: str, now_ms: int, minutes: int = 5) -> int:
        return self.totals(site, *realtime_range(now_ms, minutes)).visitors
