"""Druid SQL over the one datasource that holds both views (pure: text and parameters).

Open days are the speed rows (one per minute, site and combination of property values, visitors
as HLL sketches); each closed day is the batch rows that replaced them (serving.druid.batch_ingest:
the day's hits at the same grain, plus the visit each hit belongs to, its visitor, length and
duration, and its entry and exit page). So a closed range is grouped per visit first, as the
embedded store's compiler does (serving.analytics.sql): event filters select the visits with a
matching hit, and visit metrics count each visit once. Visits, pageviews and events are exact;
visitors are Druid's HLL estimate of the distinct visitor numbers.

SQL text comes from closed sets (column names from events.properties, the metric names here,
fixed functions); every value the client sent is a pydruid named parameter.
"""

from __future__ import annotations

import datetime as dt

from events.days import day_bounds
from events.properties import PROPERTIES, custom_key, is_property
from serving.analytics.query import Query
from serving.analytics.sql import filter_sql as compile_filters
from serving.analytics.sql import order_sql

DATASOURCE = "pixel_agg"
RANGE = (
    "site = %(site)s AND is_bot = 'false' "
    "AND __time >= MILLIS_TO_TIMESTAMP(%(start)s) AND __time < MILLIS_TO_TIMESTAMP(%(end)s)"
)
TIME_SQL = {
    "hour": "TIME_FORMAT(TIME_FLOOR(__time, 'PT1H'), 'yyyy-MM-dd HH:00:00')",
    "day": "TIME_FORMAT(TIME_FLOOR(__time, 'P1D'), 'yyyy-MM-dd')",
    "week": "TIME_FORMAT(TIME_FLOOR(__time, 'P1W'), 'yyyy-MM-dd')",
    "month": "TIME_FORMAT(TIME_FLOOR(__time, 'P1M'), 'yyyy-MM-dd')",
    "minute": "TIMESTAMP_TO_MILLIS(TIME_FLOOR(__time, 'PT1M'))",
}
VISIT = '"visit"'
# A visit's part of a group, from its batch rows in the group (cf. serving.store.rollup.PER_VISIT).
PER_VISIT = (
    'MAX("visitor") AS visitor, SUM(events) AS events, SUM(pageviews) AS pageviews, '
    'MAX("visit_hits") AS visit_hits, MAX("visit_duration_ms") AS visit_duration_ms'
)
# Output column -> its SQL over the per-visit rows (the embedded compiler's METRIC_SQL in Druid).
METRIC_SQL = {
    "visitors": "APPROX_COUNT_DISTINCT_DS_HLL(visitor)",
    "visits": "COUNT(*)",
    "pageviews": "SUM(pageviews)",
    "events": "SUM(events)",
    "views_per_visit": "ROUND(CAST(SUM(pageviews) AS DOUBLE) / COUNT(*), 2)",
    "bounce_rate": "ROUND(100.0 * COUNT(*) FILTER (WHERE visit_hits = 1) / COUNT(*))",
    "visit_duration": "ROUND(CAST(SUM(visit_duration_ms) AS DOUBLE) / COUNT(*) / 1000.0)",
    "percentage": "APPROX_COUNT_DISTINCT_DS_HLL(visitor)",  # visitors; made a share by the engine
}


def binder(params: dict):
    """bind(value) -> a pydruid named placeholder for ``value``, kept in ``params``."""

    def bind(value: str) -> str:
        name = f"p{sum(1 for key in params if key[0] == 'p' and key[1:].isdigit())}"
        params[name] = value
        return f"%({name})s"

    return bind


def property_sql(name: str, bind) -> str:
    """A property's value in the datasource: its column, or a custom property's value in the
    batch rows' ``props`` JSON text ("" when absent), the key bound as a JSON path."""
    key = custom_key(name)
    if key is None:
        return f'"{PROPERTIES[name].column}"'
    path = "$['" + key.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return f"COALESCE(JSON_VALUE(TRY_PARSE_JSON(\"props\"), {bind(path)}), '')"


def filter_sql(node, params: dict) -> str:
    """A filter tree (serving.analytics.query) as a Druid SQL condition; values into ``params``
    as pydruid's named parameters."""
    return compile_filters(
        node,
        [],
        bind=binder(params),
        contains="CONTAINS_STRING({}, {})",
        matches="REGEXP_LIKE({}, {})",
        column=property_sql,
    )


def group_sql(group: str, params: dict) -> str:
    """A property name or a time grain as a Druid SQL expression."""
    return TIME_SQL[group] if group in TIME_SQL else property_sql(group, binder(params))


def compile_closed(query: Query, first: dt.date, last: dt.date, paginate: bool = True) -> tuple[str, str | None, dict]:
    """The statement for ``query`` over the closed days [first, last] (columns d0.., m0..), the
    statement that counts its groups (None without dimensions or when not asked), and their
    parameters."""
    params: dict = {"site": query.site, "start": day_bounds(first)[0], "end": day_bounds(last)[1]}
    where = RANGE + (f" AND {filter_sql(query.filters, params)}" if query.filters is not None else "")
    dims = query.dimensions
    groups = [group_sql(d if is_property(d) else query.time_grain(), params) for d in dims]
    positions = ", ".join(str(i + 1) for i in range(len(dims) + 1))
    inner = (
        f"SELECT {', '.join([*(f'{g} AS d{i}' for i, g in enumerate(groups)), VISIT])}, {PER_VISIT} "
        f'FROM "{DATASOURCE}" WHERE {where} GROUP BY {positions}'
    )
    names = [f"d{i}" for i in range(len(dims))]
    metrics = [f"{METRIC_SQL[m]} AS m{i}" for i, m in enumerate(query.metrics)]
    sql = f"SELECT {', '.join([*names, *metrics])} FROM ({inner}) AS per_visit"
    count = None
    if names:
        sql += f" GROUP BY {', '.join(names)} ORDER BY {order_sql(query, dims)}"
        if paginate:
            sql += " LIMIT %(limit)s OFFSET %(offset)s"
            params |= {"limit": query.limit, "offset": query.offset}
        if query.total_rows:
            count = f"SELECT COUNT(*) FROM (SELECT {', '.join(names)} FROM ({inner}) GROUP BY {', '.join(names)})"
    return sql, count, params


def compile_prop_keys(query: Query, first: dt.date, last: dt.date, limit: int) -> tuple[str, dict]:
    """The custom property keys of the query's events over the closed days [first, last] (its
    filters applied), each with its events, most first."""
    params: dict = {"site": query.site, "start": day_bounds(first)[0], "end": day_bounds(last)[1], "limit": limit}
    where = RANGE + " AND \"props\" <> ''"
    if query.filters is not None:
        where += f" AND {filter_sql(query.filters, params)}"
    return (
        f'SELECT u.k AS k, SUM("events") AS events FROM "{DATASOURCE}" '
        "CROSS JOIN UNNEST(JSON_KEYS(TRY_PARSE_JSON(\"props\"), '$')) AS u(k) "
        f"WHERE {where} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT %(limit)s",
        params,
    )
