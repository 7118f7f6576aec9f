"""An analytics question, and Plausible's Stats API v2 query -> that question. Pure, no I/O.

Every name a client sends is checked against a closed set here (metrics, properties, operators,
ranges) and every value is bounded (count, length), so the compiler downstream binds values as
parameters and never pastes request text into SQL. A bad query is a QueryError (-> 400) that says
what is allowed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from events.properties import CUSTOM_PREFIX, PROPERTIES, is_property
from serving.query import QueryError, month_end, month_start, parse_date

METRICS = (
    "visitors",
    "visits",
    "pageviews",
    "views_per_visit",
    "bounce_rate",
    "visit_duration",
    "events",
    "percentage",
    "conversion_rate",  # with event:goal (a filter or dimension): serving.analytics.goals
)
GOAL = "event:goal"
TIME_DIMENSIONS = ("time", "time:hour", "time:day", "time:week", "time:month")
PROPERTY_NAMES = f"{', '.join(PROPERTIES)}, {CUSTOM_PREFIX}<key>"
OPERATORS = ("is", "is_not", "contains", "contains_not", "matches", "matches_not")
DATE_RANGES = ("day", "7d", "28d", "30d", "month", "6mo", "12mo", "year", "all")
COMPARISONS = ("previous_period", "year_over_year")

MAX_FILTERS = 30  # conditions in one query, however nested
MAX_DEPTH = 5
MAX_VALUES = 100  # values of one condition
MAX_VALUE_CHARS = 1000
MAX_PATTERN_CHARS = 300  # a `matches` pattern (RE2: linear time, no catastrophic backtracking)
MAX_DIMENSIONS = 4
MAX_LIMIT = 10_000


@dataclass(frozen=True)
class Condition:
    op: str  # one of OPERATORS
    prop: str  # one of PROPERTIES
    values: tuple[str, ...]


@dataclass(frozen=True)
class Junction:
    op: str  # "and" | "or"
    children: tuple


@dataclass(frozen=True)
class Negation:
    child: object


@dataclass(frozen=True)
class Query:
    site: str
    first: dt.date
    last: dt.date  # inclusive
    metrics: tuple[str, ...]
    dimensions: tuple[str, ...] = ()
    filters: object | None = None  # Condition | Junction | Negation
    order_by: tuple[tuple[str, str], ...] = ()
    limit: int = MAX_LIMIT
    offset: int = 0
    total_rows: bool = False
    comparison: str | None = None
    extra: dict = field(default_factory=dict, compare=False)

    def days(self) -> int:
        return (self.last - self.first).days + 1

    def time_grain(self) -> str | None:
        """The time dimension's grain (hour, day, week, month), if the query has one."""
        for dim in self.dimensions:
            if dim in TIME_DIMENSIONS:
                if dim != "time":
                    return dim.removeprefix("time:")
                return "hour" if self.days() == 1 else "day" if self.days() <= 40 else "month"
        return None


def date_range(value, today: dt.date, first_data_day: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """Plausible's ``date_range``: a name relative to ``today``, or [first, last]."""
    if isinstance(value, list):
        if len(value) != 2 or not all(isinstance(v, str) for v in value):
            raise QueryError('date_range as a list is ["YYYY-MM-DD", "YYYY-MM-DD"]')
        first, last = parse_date(value[0], "date_range[0]"), parse_date(value[1][:10], "date_range[1]")
        if last < first:
            raise QueryError(f"date_range ends ({last}) before it starts ({first})")
        return first, last
    if value not in DATE_RANGES:
        raise QueryError(f"unknown date_range {value!r}; one of {', '.join(DATE_RANGES)} or [first, last]")
    if value == "day":
        return today, today
    if value in ("7d", "28d", "30d"):
        return today - dt.timedelta(days=int(value[:-1]) - 1), today
    if value == "month":
        return month_start(today), month_end(today)
    if value in ("6mo", "12mo"):
        return month_start(today, int(value.removesuffix("mo")) - 1), month_end(today)
    if value == "year":
        return dt.date(today.year, 1, 1), dt.date(today.year, 12, 31)
    return (first_data_day or today), today  # "all"


def _condition(raw, count: list[int], depth: int):
    if not isinstance(raw, list) or not raw or not isinstance(raw[0], str):
        raise QueryError(
            f'a filter is [operator, property, [values]] or ["and"|"or", [filters]] '
            f'or ["not", filter]; got {str(raw)[:100]!r}'
        )
    if depth > MAX_DEPTH:
        raise QueryError(f"filters nest at most {MAX_DEPTH} deep")
    op = raw[0]
    if op in ("and", "or"):
        if len(raw) != 2 or not isinstance(raw[1], list) or not raw[1]:
            raise QueryError(f'["{op}", [filters]] needs a non-empty list of filters')
        return Junction(op, tuple(_condition(child, count, depth + 1) for child in raw[1]))
    if op == "not":
        if len(raw) != 2:
            raise QueryError('["not", filter] takes one filter')
        return Negation(_condition(raw[1], count, depth + 1))
    if op not in OPERATORS:
        raise QueryError(f"unknown filter operator {op!r}; one of {', '.join(OPERATORS)}, and, or, not")
    if len(raw) not in (3, 4) or not isinstance(raw[1], str) or not isinstance(raw[2], list):
        raise QueryError(f"filter {str(raw)[:100]!r} is not [operator, property, [values]]")
    if len(raw) == 4 and raw[3] not in ({}, {"case_sensitive": True}):
        raise QueryError(
            'a filter\'s modifiers are {} or {"case_sensitive": true}: for case-insensitive matching '
            'use matches with (?i), e.g. ["matches", "event:page", ["(?i)^/blog"]]'
        )
    prop = raw[1]
    if not is_property(prop) and prop != GOAL:
        raise QueryError(f"unknown property {prop!r} in a filter; one of {PROPERTY_NAMES}, {GOAL}")
    values = raw[2]
    if not values or len(values) > MAX_VALUES or not all(isinstance(v, str) for v in values):
        raise QueryError(f"a filter's values are 1 to {MAX_VALUES} strings")
    limit = MAX_PATTERN_CHARS if op.startswith("matches") else MAX_VALUE_CHARS
    if any(len(v) > limit for v in values):
        raise QueryError(f"a {op} filter's values are at most {limit} characters")
    count[0] += 1
    if count[0] > MAX_FILTERS:
        raise QueryError(f"at most {MAX_FILTERS} filter conditions in one query")
    return Condition(op, prop, tuple(values))


def conditions(node) -> list[Condition]:
    """Every condition of a filter tree (None: none)."""
    if isinstance(node, Condition):
        return [node]
    if isinstance(node, Negation):
        return conditions(node.child)
    if isinstance(node, Junction):
        return [c for child in node.children for c in conditions(child)]
    return []


def ordered(rows: dict[tuple, list], metrics: tuple[str, ...], query: Query) -> list[tuple]:
    """The keys of rows (dimension values -> values of ``metrics``) in the query's order, ties by
    the dimension values ascending: as the SQL compilers order them."""
    keys = sorted(rows)
    for name, direction in reversed(query.order_by):
        if name in query.dimensions:
            i = query.dimensions.index(name)
            keys.sort(key=lambda k, i=i: k[i], reverse=direction == "desc")
        else:
            i = metrics.index(name)
            keys.sort(key=lambda k, i=i: rows[k][i], reverse=direction == "desc")
    return keys


def wildcard_regex(value: str) -> str:
    """A ``*`` wildcard pattern (v1 filters, page goals) as an anchored RE2 expression."""
    return "^" + "".join(".*" if ch == "*" else "\\" + ch if ch in _REGEX_SPECIAL else ch for ch in value) + "$"


_REGEX_SPECIAL = set("\\.^$|?*+()[]{}")


def parse_filters(raw: list) -> object | None:
    """v2 ``filters``: a list of filters, implicitly and-ed."""
    if not isinstance(raw, list):
        raise QueryError("filters is a list of filters")
    if not raw:
        return None
    count = [0]
    children = tuple(_condition(f, count, 1) for f in raw)
    return children[0] if len(children) == 1 else Junction("and", children)


def parse_v2(body, today: dt.date, first_data_day: dt.date | None = None) -> Query:
    """A Stats API v2 request body -> Query (site access is checked by the caller)."""
    if not isinstance(body, dict):
        raise QueryError("the body is a JSON object: {site_id, metrics, date_range, ...}")
    known = {"site_id", "metrics", "date_range", "date", "dimensions", "filters", "order_by", "include", "pagination"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise QueryError(f"unknown field {unknown[0]!r}; the query takes {', '.join(sorted(known))}")
    site = body.get("site_id")
    if not isinstance(site, str) or not site:
        raise QueryError("site_id is required (the site's domain)")
    metrics = body.get("metrics")
    if not isinstance(metrics, list) or not metrics or not all(isinstance(m, str) for m in metrics):
        raise QueryError(f"metrics is a non-empty list; any of {', '.join(METRICS)}")
    bad = [m for m in metrics if m not in METRICS]
    if bad:
        raise QueryError(f"unknown metric {bad[0]!r}; any of {', '.join(METRICS)}")
    if len(set(metrics)) != len(metrics):
        raise QueryError("a metric is asked twice")
    ref = parse_date(body["date"], "date") if isinstance(body.get("date"), str) else today
    if "date_range" not in body:
        raise QueryError("date_range is required: a name (day, 7d, 30d, month, ...) or [first, last]")
    first, last = date_range(body["date_range"], ref, first_data_day)
    dimensions = body.get("dimensions", [])
    if not isinstance(dimensions, list) or not all(isinstance(d, str) for d in dimensions):
        raise QueryError("dimensions is a list of property names")
    if len(dimensions) > MAX_DIMENSIONS or len(set(dimensions)) != len(dimensions):
        raise QueryError(f"at most {MAX_DIMENSIONS} distinct dimensions")
    bad = [d for d in dimensions if not is_property(d) and d not in TIME_DIMENSIONS and d != GOAL]
    if bad:
        raise QueryError(f"unknown dimension {bad[0]!r}; one of {PROPERTY_NAMES}, {GOAL}, {', '.join(TIME_DIMENSIONS)}")
    if sum(d in TIME_DIMENSIONS for d in dimensions) > 1:
        raise QueryError("one time dimension at most")
    if "percentage" in metrics and not dimensions:
        raise QueryError("percentage needs dimensions (a share of the total)")
    filters = parse_filters(body.get("filters", []))
    if "order_by" in body and not isinstance(body["order_by"], list):
        raise QueryError('order_by is a list of [name, "asc"|"desc"]')
    order_by = _order_by(body.get("order_by"), metrics, dimensions)
    include = body.get("include", {})
    if not isinstance(include, dict) or set(include) - {"total_rows", "comparisons", "imports", "time_labels"}:
        raise QueryError("include takes total_rows and comparisons")
    if any(not isinstance(include[flag], bool) for flag in ("total_rows", "imports", "time_labels") if flag in include):
        raise QueryError("include.total_rows (and Plausible's imports, time_labels) are true or false")
    comparison = None
    if "comparisons" in include:
        mode = include["comparisons"].get("mode") if isinstance(include["comparisons"], dict) else None
        if mode not in COMPARISONS:
            raise QueryError(f'include.comparisons is {{"mode": one of {", ".join(COMPARISONS)}}}')
        comparison = mode
    pagination = body.get("pagination", {})
    if not isinstance(pagination, dict) or set(pagination) - {"limit", "offset"}:
        raise QueryError("pagination is {limit, offset}")
    limit, offset = pagination.get("limit", MAX_LIMIT), pagination.get("offset", 0)
    integers = all(isinstance(v, int) and not isinstance(v, bool) for v in (limit, offset))
    if not integers or not 1 <= limit <= MAX_LIMIT or offset < 0:
        raise QueryError(f"pagination.limit is 1..{MAX_LIMIT}, pagination.offset >= 0")
    return Query(
        site,
        first,
        last,
        tuple(metrics),
        tuple(dimensions),
        filters,
        order_by,
        limit,
        offset,
        bool(include.get("total_rows")),
        comparison,
    )


def _order_by(raw, metrics: list[str], dimensions: list[str]) -> tuple[tuple[str, str], ...]:
    if raw is None:
        time = [d for d in dimensions if d in TIME_DIMENSIONS]
        return tuple((d, "asc") for d in time) or ((metrics[0], "desc"),)
    if not isinstance(raw, list):
        raise QueryError('order_by is a list of [name, "asc"|"desc"]')
    out = []
    for item in raw:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or item[1] not in ("asc", "desc")
            or item[0] not in (*metrics, *dimensions)
        ):
            raise QueryError(
                f'order_by items are [a metric or dimension of the query, "asc"|"desc"]; got {str(item)[:100]!r}'
            )
        out.append((item[0], item[1]))
    return tuple(out)
