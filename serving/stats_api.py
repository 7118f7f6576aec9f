"""The Stats API v1: Plausible Stats API v1's shape over the analytics engine.

    GET /api/v1/stats/aggregate   -> {"results": {"visitors": {"value": 123}, ...}}
    GET /api/v1/stats/timeseries  -> {"results": [{"date": "2026-11-20", "visitors": 12, ...}]}
    GET /api/v1/stats/breakdown   -> {"results": [{"browser": "Firefox", "visitors": 9, ...}]}
    GET /api/v1/stats/realtime/visitors -> 7

Each answer's ``meta`` says which of its days are final (``final``: closed by the nightly job,
exact) and which provisional (``provisional``: the speed layer's), and ``final_through``, the
batch watermark.

Filters in v1's syntax: ``a==x;b!=y`` (and-ed), ``a==x|y`` (any of), ``*`` wildcards. Closed
days are exact under any filters; for days not closed yet, a metric the speed rows can't give
for this query (visits, bounce rate, visit duration; or visitors and pageviews under filters
they can't apply) is null, and the answer has a "warning" saying why.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import replace

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse

from events.properties import custom_key, is_property
from serving.analytics.engine import LIVE_METRICS, Analytics, change
from serving.analytics.query import GOAL, MAX_FILTERS, PROPERTY_NAMES, wildcard_regex
from serving.analytics.query import Query as Question
from serving.analytics.query import parse_filters as parse_v2_filters
from serving.openapi import PROPERTY_PATTERN
from serving.query import (
    INTERVALS,
    MAX_HOURLY_DAYS,
    METRICS,
    PERIODS,
    QueryError,
    StoreUnavailable,
    month_start,
    parse_interval,
    parse_limit,
    parse_metrics,
    parse_page,
    parse_period,
)


def one_of(names) -> str:
    """An anchored pattern of exactly these names (the OpenAPI document's closed sets)."""
    return "^(" + "|".join(names) + ")$"


def _split(text: str, sep: str) -> list[str]:
    """``text`` split at each ``sep`` not escaped by a backslash (escapes kept)."""
    parts, current, chars = [], [], iter(text)
    for ch in chars:
        if ch == "\\":
            current.append(ch + next(chars, ""))
        elif ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    return [*parts, "".join(current)]


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def v1_filters_as_v2(raw: str | None) -> list:
    """``a==x;b!=y|z``, ``*`` wildcards (``\\;``, ``\\|``: a value's own ``;`` and ``|``) -> the
    same filters in v2's JSON form."""
    if not raw:
        return []
    parts = [f for f in _split(raw, ";") if f.strip()]
    if len(parts) > MAX_FILTERS:
        raise QueryError(f"at most {MAX_FILTERS} filters")
    out = []
    for part in parts:
        at = {op: part.find(op) for op in ("==", "!=") if op in part}
        if not at:
            raise QueryError(f"filter {part[:100]!r} is not property==value or property!=value")
        op = min(at, key=at.get)
        prop, value = part[: at[op]].strip(), part[at[op] + 2 :]
        if not value:
            raise QueryError(f"filter {part[:100]!r} is not property==value or property!=value")
        if not is_property(prop) and prop != GOAL:
            raise QueryError(f"unknown property {prop!r}; one of {PROPERTY_NAMES}, {GOAL}")
        negated = op == "!="
        values = [_unescape(v.strip()) for v in _split(value, "|")]
        if any("*" in v for v in values):
            out.append(["matches_not" if negated else "matches", prop, [wildcard_regex(v) for v in values]])
        else:
            out.append(["is_not" if negated else "is", prop, values])
    return out


def parse_v1_filters(raw: str | None):
    """v1 filters (``v1_filters_as_v2``) -> a filter tree (serving.analytics.query)."""
    return parse_v2_filters(v1_filters_as_v2(raw)) if raw else None


def parse_property(prop: str) -> str:
    if not is_property(prop) and prop != GOAL:
        raise QueryError(f"unknown property {prop!r}; one of {PROPERTY_NAMES}, {GOAL}")
    return prop


class Unauthorized(Exception):
    """No valid token for a private (or unknown) site: 401."""


def query_error_response(_request: Request, exc: QueryError) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=400)


def unavailable_response(_request: Request, exc: StoreUnavailable) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=503, headers={"Retry-After": "5"})


def unauthorized_response(_request: Request, exc: Unauthorized) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"})


def check_access(can_read: Callable[[str, str | None], bool], site: str, authorization: str | None) -> str:
    """The site, if ``authorization`` (a Bearer header, or none) may read it; else Unauthorized."""
    token = authorization[7:].strip() if authorization and authorization[:7].lower() == "bearer " else None
    if not can_read(site, token):
        raise Unauthorized(
            f"site {site} is private or unknown: send `Authorization: Bearer <token>` (`pixel tokens create {site}`)"
            if token is None
            else f"this token does not open site {site}"
        )
    return site


class V1Stats:
    """The v1 answers (what the routes return), for the routes and the dashboard's export."""

    def __init__(self, analytics: Analytics, today: Callable[[], dt.date]):
        self.analytics = analytics
        self.today = today

    def question(self, site: str, period: str, date: str | None, metrics: str, filters: str | None, **more) -> Question:
        days = parse_period(period, date, self.today())
        return Question(
            site, days.first, days.last, tuple(parse_metrics(metrics)), filters=parse_v1_filters(filters), **more
        )

    def run(self, q: Question) -> tuple[dict[tuple, list], list[tuple], str | None, dict]:
        """Rows by dimension values, their order, a warning, and meta. Where the open days can't
        give a metric for this query, it is None (see the module's docstring); a time bucket of
        closed days keeps its exact values."""
        answer = self.analytics.answer(q)
        warning = next(iter(answer["meta"].get("warnings", [])), None)
        rows = {tuple(r["dimensions"]): r["metrics"] for r in answer["results"]}
        if warning is None:
            return rows, list(rows), None, answer["meta"]
        capable = tuple(m for m in q.metrics if m in LIVE_METRICS)
        partial = self.analytics.answer(replace(q, metrics=capable, order_by=_order(q, capable))) if capable else None
        if partial is not None and "warnings" in partial["meta"]:
            partial = None
        known = {tuple(r["dimensions"]): r["metrics"] for r in partial["results"]} if partial else {}
        open_from = answer["meta"]["provisional"][0]
        time = next((i for i, d in enumerate(q.dimensions) if d.startswith("time")), None)
        order = list(known) if partial else list(rows)
        out = {}
        for key in order:
            if time is not None and _bucket_end(key[time], q.time_grain()) < open_from and key in rows:
                out[key] = rows[key]  # a closed day's bucket: exact
            else:
                out[key] = [known[key][capable.index(m)] if key in known and m in capable else None for m in q.metrics]
        return out, order, warning, answer["meta"]

    def aggregate(
        self, site_id: str, period: str, date: str | None, metrics: str, filters: str | None, compare: str | None = None
    ) -> dict:
        if compare not in (None, "previous_period"):
            raise QueryError("compare takes previous_period")
        q = self.question(site_id, period, date, metrics, filters)
        rows, _, warning, meta = self.run(q)
        values = rows.get((), [None if warning else 0] * len(q.metrics))
        results = {m: {"value": v} for m, v in zip(q.metrics, values)}
        if compare:
            before_q = replace(q, first=q.first - dt.timedelta(days=q.days()), last=q.first - dt.timedelta(days=1))
            before, _, _, _ = self.run(before_q)
            for m, now, old in zip(q.metrics, values, before.get((), [0] * len(q.metrics))):
                results[m]["change"] = None if now is None or old is None else change(m, now, old)
        return _body(results, warning, meta)

    def timeseries(
        self, site_id: str, period: str, date: str | None, metrics: str, filters: str | None, interval: str = "date"
    ) -> dict:
        interval = parse_interval(interval)
        q = self.question(site_id, period, date, metrics, filters)
        grain = {"date": "time:day", "month": "time:month", "hour": "time:hour"}[interval]
        if interval == "hour" and q.days() > MAX_HOURLY_DAYS:
            raise QueryError(f"interval=hour covers at most {MAX_HOURLY_DAYS} days; use interval=date")
        rows, _, warning, meta = self.run(replace(q, dimensions=(grain,), order_by=((grain, "asc"),)))
        open_from = meta.get("provisional", [None])[0]
        results = []
        for label in _buckets(q.first, q.last, interval):
            values = rows.get((label,))
            if values is None:
                unknown = warning is not None and open_from is not None and label[:10] >= open_from
                values = [None if unknown and m not in LIVE_METRICS else 0 for m in q.metrics]
            results.append({"date": label, **dict(zip(q.metrics, values))})
        return _body(results, warning, meta)

    def breakdown(
        self,
        site_id: str,
        property: str,  # noqa: A002 (Plausible's name)
        period: str,
        date: str | None,
        metrics: str,
        filters: str | None,
        limit: int = 100,
        page: int = 1,
    ) -> dict:
        prop, limit, page = parse_property(property), parse_limit(limit), parse_page(page)
        q = self.question(site_id, period, date, metrics, filters)
        q = replace(q, dimensions=(prop,), order_by=_order(q, q.metrics), limit=limit, offset=(page - 1) * limit)
        rows, order, warning, meta = self.run(q)
        key = custom_key(prop) or prop.split(":", 1)[1]  # Plausible's: "page", "browser", "plan"
        return _body([{key: value[0], **dict(zip(q.metrics, rows[value]))} for value in order], warning, meta)


def stats_router(
    analytics: Analytics,
    today: Callable[[], dt.date],
    can_read: Callable[[str, str | None], bool],
    restatements: Callable[[str, dt.date, dt.date], list[dict]] = lambda site, first, last: [],
    rejected: Callable[[str, dt.date, dt.date], list[dict]] = lambda site, first, last: [],
) -> APIRouter:
    """Routes over ``analytics``; ``today`` is the UTC day periods are relative to; ``can_read(site,
    token)`` decides access (the registry); ``restatements(site, first, last)`` reads the
    restatement log (serving.store.restatements), ``rejected(site, first, last)`` what the
    nightly job filtered out (serving.batch.rejected). Install ``query_error_response`` and
    ``unauthorized_response`` as the app's handlers."""
    router = APIRouter(prefix="/api/v1/stats", tags=["stats"])
    v1 = V1Stats(analytics, today)

    def site_access(
        site_id: str = Query(..., description="The site's domain, as in the embed snippet.", examples=["example.com"]),
        authorization: str | None = Header(None, description="Bearer <token> (private sites)"),
    ) -> str:
        return check_access(can_read, site_id, authorization)

    SiteId = Depends(site_access)
    Period = Query(
        "30d",
        json_schema_extra={"pattern": one_of(PERIODS)},
        description="day, 7d, 30d, month, 6mo, 12mo or custom (with date=D1,D2).",
    )
    Date = Query(
        None,
        json_schema_extra={"pattern": r"^\d{4}-\d{2}-\d{2}(,\d{4}-\d{2}-\d{2})?$"},
        description="Reference day YYYY-MM-DD (default today, UTC), or D1,D2 for custom.",
    )
    Metrics = Query(
        "visitors",
        json_schema_extra={"pattern": f"^{one_of(METRICS)[1:-1]}(,{one_of(METRICS)[1:-1]})*$"},
        description="Comma-separated: visitors, pageviews, visits, bounce_rate, "
        "visit_duration, views_per_visit, events.",
    )
    Filters = Query(
        None,
        description="property==value or property!=value, several joined by ';', "
        "values a|b, '*' wildcards; e.g. visit:browser==Chrome;event:page==/blog/*",
    )

    @router.get("/aggregate", summary="Totals over a period")
    def aggregate(
        site_id: str = SiteId,
        period: str = Period,
        date: str | None = Date,
        metrics: str = Metrics,
        filters: str | None = Filters,
        compare: str | None = Query(
            None,
            json_schema_extra={"pattern": "^previous_period$"},
            description="previous_period: each value with its change (%).",
        ),
    ):
        return v1.aggregate(site_id, period, date, metrics, filters, compare)

    @router.get("/timeseries", summary="One point per day, month or hour")
    def timeseries(
        site_id: str = SiteId,
        period: str = Period,
        date: str | None = Date,
        metrics: str = Metrics,
        filters: str | None = Filters,
        interval: str = Query(
            "date",
            json_schema_extra={"pattern": one_of(INTERVALS)},
            description="date, month, or hour (at most 31 days of hours)",
        ),
    ):
        return v1.timeseries(site_id, period, date, metrics, filters, interval)

    @router.get("/breakdown", summary="Top values of a property")
    def breakdown(
        site_id: str = SiteId,
        property: str = Query(  # noqa: A002 (Plausible's name)
            ..., json_schema_extra={"pattern": PROPERTY_PATTERN}, description=f"Any of: {PROPERTY_NAMES}, {GOAL}"
        ),
        period: str = Period,
        date: str | None = Date,
        metrics: str = Metrics,
        filters: str | None = Filters,
        limit: int = Query(
            100, json_schema_extra={"minimum": 1, "maximum": 1000}, description="Rows per page, 1..1000."
        ),
        page: int = Query(1, json_schema_extra={"minimum": 1, "maximum": 10000}, description="1..10000."),
    ):
        return v1.breakdown(site_id, property, period, date, metrics, filters, limit, page)

    @router.get("/restatements", summary="Closed days' numbers: what the API said before, what it says now")
    def restated(site_id: str = SiteId, period: str = Period, date: str | None = Date):
        days = parse_period(period, date, today())
        return {"results": restatements(site_id, days.first, days.last)}

    @router.get("/rejected", summary="Traffic the nightly job filtered out: bots, duplicates, bad rows")
    def filtered_out(site_id: str = SiteId, period: str = Period, date: str | None = Date):
        days = parse_period(period, date, today())
        return {"results": rejected(site_id, days.first, days.last)}

    @router.get("/realtime/visitors", summary="Visitors in the last 5 minutes")
    def realtime_visitors(site_id: str = SiteId) -> int:
        return analytics.realtime_visitors(site_id)

    return router


def _body(results, warning: str | None, meta: dict) -> dict:
    """A v1 answer: Plausible's results (and warning), and which of its days are final (closed by
    the nightly job, through ``final_through``) and which provisional (the speed layer's)."""
    body = {"results": results}
    if warning:
        body["warning"] = warning
    body["meta"] = {k: meta[k] for k in ("final_through", "final", "provisional") if k in meta}
    return body


def _order(q: Question, metrics: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    if any(d.startswith("time") for d in q.dimensions):
        return tuple((d, "asc") for d in q.dimensions)
    return ((metrics[0], "desc"),) if metrics else ()


def _bucket_end(label: str, grain: str | None) -> str:
    """The last day (YYYY-MM-DD) of a time bucket's label."""
    first = dt.date.fromisoformat(label[:10])
    if grain == "week":
        return str(first + dt.timedelta(days=6))
    if grain == "month":
        return str(month_start(first, -1) - dt.timedelta(days=1))
    return str(first)


def _buckets(first: dt.date, last: dt.date, interval: str) -> list[str]:
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    if interval == "date":
        return [str(d) for d in days]
    if interval == "hour":
        return [f"{d} {h:02d}:00:00" for d in days for h in range(24)]
    return list(dict.fromkeys(str(month_start(d)) for d in days))
