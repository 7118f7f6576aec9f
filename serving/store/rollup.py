"""Per site, day and property value, the day's numbers: what a question without filters, by at
most one property (and days, weeks or months), needs, without grouping a big site's hits by
visit again on every request.

Each number is additive across days: visits never span days and visitor numbers are per day (ids
rotate with the daily salt), so a range's visitors are the sum of its days'. The rows are made
from the day's hits when the day is loaded, by the same per-visit aggregation the question
compiler uses (serving.analytics.sql), so both paths give the same answers (tested).
"""

from __future__ import annotations

from serving.store.schema import PROPERTIES

TABLE = "day_props"
TOTAL = ""  # the property of a day's totals row (its value is "" too)
ROLLUP_SCHEMA: list[tuple[str, str]] = [
    ("site", "string"),
    ("day", "date"),
    ("property", "string"),  # a name of PROPERTIES, or TOTAL
    ("value", "string"),
    ("visitors", "long"),
    ("visits", "long"),
    ("pageviews", "long"),
    ("events", "long"),
    ("bounces", "long"),
    ("visit_duration_ms", "long"),
]


# A visit's part of a group, from its hits in the group (grouped by ..., visit): its visitor,
# events, pageviews, and the whole visit's length and duration. The question compiler uses it too.
PER_VISIT = (
    "any_value(visitor) AS visitor, count(*) AS events, count(*) FILTER (WHERE event = 'pageview') AS pageviews, "
    "any_value(visit_hits) AS visit_hits, any_value(visit_duration_ms) AS visit_duration_ms"
)


def per_visit(column: str) -> str:
    """The day's hits grouped by site, a column's value and visit (``?`` is the day)."""
    return (
        f"SELECT site, day, {column} AS value, visit, {PER_VISIT} FROM hits WHERE day = ? "
        "GROUP BY site, day, value, visit"
    )


def insert_sql() -> tuple[str, int]:
    """The statement that fills a day's rows from its hits, and how many times it binds the day."""
    parts = [(TOTAL, "''"), *((name, prop.column) for name, prop in PROPERTIES.items())]
    selects = [
        f"SELECT site, day, '{name}' AS property, value, count(DISTINCT visitor), count(*), sum(pageviews), "
        f"sum(events), count(*) FILTER (WHERE visit_hits = 1), sum(visit_duration_ms) "
        f"FROM ({per_visit(column)}) GROUP BY site, day, value"
        for name, column in parts
    ]
    return f"INSERT INTO {TABLE} SELECT * FROM ({' UNION ALL '.join(selects)}) ORDER BY site, property", len(parts)
