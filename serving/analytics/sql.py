"""A Query -> one DuckDB statement over the store's ``hits`` rows of one site. Pure.

Every identifier comes from a closed set (serving.store.schema.PROPERTIES, the metric names
here); every value the client sent is a bound parameter.

The statement aggregates twice: per group and visit (a visit's hits that match the filters:
its visitor, hits, pageviews, and the visit's length and duration), then per group. So event
filters select the visits that have a matching hit, visit metrics count each visit once, and
visitors are exact (distinct visitor numbers).
"""

from __future__ import annotations

import datetime as dt

from events.properties import PROPERTIES, custom_key, is_property
from serving.analytics.query import Condition, Junction, Negation, Query
from serving.store import rollup

# Output column -> its SQL over the per-visit rows.
METRIC_SQL = {
    "visitors": "count(DISTINCT visitor)",
    "visits": "count(*)",
    "pageviews": "sum(pageviews)",
    "events": "sum(events)",
    "views_per_visit": "round(sum(pageviews) / count(*), 2)",
    "bounce_rate": "round(100.0 * count(*) FILTER (WHERE visit_hits = 1) / count(*))",
    "visit_duration": "round(sum(visit_duration_ms) / count(*) / 1000.0)",
    "percentage": "count(DISTINCT visitor)",  # visitors; made a share of the total by the engine
}
# The same metrics over the per-day rollups (serving.store.rollup): sums of additive numbers.
ROLLUP_METRIC_SQL = {
    "visitors": "sum(visitors)",
    "visits": "sum(visits)",
    "pageviews": "sum(pageviews)",
    "events": "sum(events)",
    "views_per_visit": "round(sum(pageviews) / sum(visits), 2)",
    "bounce_rate": "round(100.0 * sum(bounces) / sum(visits))",
    "visit_duration": "round(sum(visit_duration_ms) / sum(visits) / 1000.0)",
    "percentage": "sum(visitors)",
}
TIME_SQL = {
    "hour": "strftime(date_trunc('hour', epoch_ms(ts)), '%Y-%m-%d %H:00:00')",
    "day": "strftime(day, '%Y-%m-%d')",
    "week": "strftime(date_trunc('week', day), '%Y-%m-%d')",
    "month": "strftime(date_trunc('month', day), '%Y-%m-%d')",
}


def property_sql(name: str, bind) -> str:
    """A property's value in the hits (DuckDB): its column, or a custom property's value in the
    ``props`` JSON text ("" when the hit hasn't it), the key bound as a JSON path."""
    key = custom_key(name)
    if key is None:
        return f'"{PROPERTIES[name].column}"'
    return f"coalesce(json_extract_string(nullif(props, ''), {bind(json_path(key))}), '')"


def json_path(key: str) -> str:
    """DuckDB's JSON path of an object's key, quoted: any character is a key's."""
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dimension_sql(query: Query, dim: str, bind) -> str:
    return property_sql(dim, bind) if is_property(dim) else TIME_SQL[query.time_grain()]


def filter_sql(
    node,
    params: list,
    bind=None,
    contains: str = "contains({}, {})",
    matches: str = "regexp_matches({}, {})",
    column=property_sql,
) -> str:
    """A filter tree -> a SQL condition. ``bind(value)`` keeps a value and returns its placeholder
    (default: appended to ``params``, ``?``, so placeholders bind in the text's order);
    ``contains`` and ``matches`` are the dialect's functions (column, placeholder); ``column``
    the dialect's property_sql. DuckDB by default."""
    bind = bind or (lambda value: params.append(value) or "?")
    again = dict(params=params, bind=bind, contains=contains, matches=matches, column=column)
    if isinstance(node, Junction):
        return "(" + f" {node.op.upper()} ".join(filter_sql(child, **again) for child in node.children) + ")"
    if isinstance(node, Negation):
        return f"(NOT {filter_sql(node.child, **again)})"
    assert isinstance(node, Condition)
    if node.op in ("is", "is_not"):
        target = column(node.prop, bind)
        sql = f"{target} IN ({', '.join(bind(value) for value in node.values)})"
    else:
        function = contains if node.op.startswith("contains") else matches
        parts = []
        for value in node.values:  # the column first: its placeholder (if any) comes first
            target = column(node.prop, bind)
            parts.append(function.format(target, bind(value)))
        sql = "(" + " OR ".join(parts) + ")"
    return f"(NOT {sql})" if node.op.endswith("_not") else sql


def compile_query(
    query: Query, first: dt.date, last: dt.date, dimensions: tuple[str, ...] | None = None, paginate: bool = True
) -> tuple[str, list]:
    """SQL and parameters for ``query`` over the closed days [first, last]; ``dimensions``
    overrides the query's (none: the totals)."""
    dims = query.dimensions if dimensions is None else dimensions
    params: list = []
    bind = lambda value: params.append(value) or "?"  # noqa: E731 (placeholders in the text's order)
    groups = [f"{dimension_sql(query, d, bind)} AS d{i}" for i, d in enumerate(dims)]
    params += [query.site, first, last]
    where = "site = ? AND day BETWEEN ? AND ?"
    if query.filters is not None:
        where += " AND " + filter_sql(query.filters, params)
    group_names = [f"d{i}" for i in range(len(dims))]
    inner = (
        f"SELECT {', '.join([*groups, 'visit'])}, {rollup.PER_VISIT} FROM hits WHERE {where} "
        f"GROUP BY {', '.join([*group_names, 'visit'])}"
    )
    metrics = [f"{METRIC_SQL[m]} AS m{i}" for i, m in enumerate(query.metrics)]
    return _grouped(query, dims, group_names, metrics, f"({inner}) AS per_visit", params, paginate)


def compile_prop_keys(query: Query, first: dt.date, last: dt.date, limit: int) -> tuple[str, list]:
    """SQL and parameters: the custom property keys of the query's events over the closed days
    [first, last] (its filters applied), each with its events, most first."""
    params: list = [query.site, first, last]
    where = "site = ? AND day BETWEEN ? AND ? AND props <> ''"
    if query.filters is not None:
        where += " AND " + filter_sql(query.filters, params)
    params.append(limit)
    return (
        "SELECT key, count(*) AS events FROM (SELECT unnest(json_keys(props)) AS key FROM hits "
        f"WHERE {where}) GROUP BY key ORDER BY events DESC, key LIMIT ?",
        params,
    )


def uses_rollup(query: Query, dimensions: tuple[str, ...]) -> bool:
    """Can the per-day rollups answer: no filters, at most one property, days/weeks/months."""
    props = [d for d in dimensions if is_property(d)]
    times = [d for d in dimensions if not is_property(d)]
    return (
        query.filters is None
        and len(props) <= 1
        and all(d in PROPERTIES for d in props)  # custom properties: from the hits
        and (not times or query.time_grain() in ("day", "week", "month"))
    )


def compile_rollup(
    query: Query, first: dt.date, last: dt.date, dimensions: tuple[str, ...] | None = None, paginate: bool = True
) -> tuple[str, list]:
    """The same answer as compile_query's, from the per-day rollups (when uses_rollup)."""
    dims = query.dimensions if dimensions is None else dimensions
    prop = next((d for d in dims if d in PROPERTIES), rollup.TOTAL)
    params: list = [query.site, first, last, prop]
    metrics = [f"{ROLLUP_METRIC_SQL[m]} AS m{i}" for i, m in enumerate(query.metrics)]
    source = f"{rollup.TABLE} WHERE site = ? AND day BETWEEN ? AND ? AND property = ?"
    groups = [f"{'value' if d in PROPERTIES else TIME_SQL[query.time_grain()]} AS d{i}" for i, d in enumerate(dims)]
    return _grouped(query, dims, groups, metrics, source, params, paginate)


def order_sql(query: Query, dims: tuple[str, ...]) -> str:
    """ORDER BY's terms over the columns d0.. (dimensions) and m0.. (metrics): the query's order,
    then every dimension ascending (ties: a stable order, page after page)."""
    order = []
    for name, direction in query.order_by:
        column = f"d{dims.index(name)}" if name in dims else f"m{query.metrics.index(name)}"
        order.append(f"{column} {direction.upper()}")
    return ", ".join([*order, *(f"d{i} ASC" for i in range(len(dims)))])


def _grouped(
    query: Query,
    dims: tuple[str, ...],
    groups: list[str],
    metrics: list[str],
    source: str,
    params: list,
    paginate: bool,
) -> tuple[str, list]:
    """SELECT groups (d0, d1, ...), metrics, total_rows FROM source, grouped, ordered, paged."""
    group_names = [f"d{i}" for i in range(len(dims))]
    select = [*groups, *metrics, "count(*) OVER () AS total_rows"]
    sql = f"SELECT {', '.join(select)} FROM {source}"
    if group_names:
        sql += f" GROUP BY {', '.join(group_names)} ORDER BY {order_sql(query, dims)}"
        if paginate:
            sql += " LIMIT ? OFFSET ?"
            params += [query.limit, query.offset]
    return sql, params
