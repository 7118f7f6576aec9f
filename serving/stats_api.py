"""The Stats API: Plausible Stats API v1's shape over the merged views.

    GET /api/v1/stats/aggregate   -> {"results": {"visitors": {"value": 123}, ...}}
    GET /api/v1/stats/timeseries  -> {"results": [{"date": "2026-11-20", "visitors": 12, ...}]}
    GET /api/v1/stats/breakdown   -> {"results": [{"browser": "Firefox", "visitors": 9, ...}]}
    GET /api/v1/stats/realtime/visitors -> 7

Visits, bounce rate and visit duration come from the batch sessions view: they are given for
ranges of closed days, and are null (with a "warning") where the range reaches the open part.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse

from serving.merge import BREAKDOWN_DEPTH, DayRange, MergedStats
from serving.query import (
    SESSION_METRICS,
    Filter,
    QueryError,
    month_end,
    parse_filters,
    parse_interval,
    parse_limit,
    parse_metrics,
    parse_period,
    parse_property,
)
from serving.realtime.interface import Count

NO_SESSIONS = (
    "visits, bounce_rate and visit_duration come from the nightly batch sessions view: "
    "they are null for ranges that include days not closed yet"
)


class Unauthorized(Exception):
    """No valid token for a private (or unknown) site: 401."""


def query_error_response(_request: Request, exc: QueryError) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=400)


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


def stats_router(
    stats: MergedStats, today: Callable[[], dt.date], can_read: Callable[[str, str | None], bool]
) -> APIRouter:
    """Routes over ``stats``; ``today`` is the UTC day periods are relative to; ``can_read(site,
    token)`` decides access (the registry). Install ``query_error_response`` and
    ``unauthorized_response`` as the app's handlers."""
    router = APIRouter(prefix="/api/v1/stats", tags=["stats"])

    def site_access(
        site_id: str = Query(..., description="The site's domain, as in the embed snippet."),
        authorization: str | None = Header(None, description="Bearer <token> (private sites)"),
    ) -> str:
        return check_access(can_read, site_id, authorization)

    SiteId = Depends(site_access)
    Period = Query("30d", description="day, 7d, 30d, month, 6mo, 12mo or custom (with date=D1,D2).")
    Date = Query(None, description="Reference day YYYY-MM-DD (default today, UTC), or D1,D2 for custom.")
    Metrics = Query(
        "visitors", description="Comma-separated: visitors, pageviews, visits, bounce_rate, visit_duration."
    )
    Filters = Query(None, description="One property==value, e.g. event:page==/pricing.")

    def values(count: Count, visits, metrics: list[str]) -> dict:
        out = {}
        for m in metrics:
            if m in ("visitors", "pageviews"):
                out[m] = getattr(count, m)
            elif visits is None:
                out[m] = None
            else:
                out[m] = {
                    "visits": visits.visits,
                    "bounce_rate": visits.bounce_rate,
                    "visit_duration": visits.visit_duration_s,
                }[m]
        return out

    def needs_sessions(metrics: list[str], flt: Filter | None) -> bool:
        wanted = any(m in SESSION_METRICS for m in metrics)
        if wanted and flt is not None:
            raise QueryError("session metrics (visits, bounce_rate, visit_duration) can't be filtered yet")
        return wanted

    @router.get("/aggregate", summary="Totals over a period")
    def aggregate(
        site_id: str = SiteId,
        period: str = Period,
        date: str | None = Date,
        metrics: str = Metrics,
        filters: str | None = Filters,
    ):
        days, names, flt = parse_period(period, date, today()), parse_metrics(metrics), parse_filters(filters)
        count = stats.aggregate(site_id, days, *((flt.dimension, flt.value) if flt else ()))
        sessions = needs_sessions(names, flt)
        visits = stats.visits(site_id, days) if sessions else None
        body = {"results": {k: {"value": v} for k, v in values(count, visits, names).items()}}
        if sessions and visits is None:
            body["warning"] = NO_SESSIONS
        return body

    @router.get("/timeseries", summary="One point per day, month or hour")
    def timeseries(
        site_id: str = SiteId,
        period: str = Period,
        date: str | None = Date,
        metrics: str = Metrics,
        filters: str | None = Filters,
        interval: str = Query("date", description="date, month, or hour (from the real-time store)"),
    ):
        days, names, flt = parse_period(period, date, today()), parse_metrics(metrics), parse_filters(filters)
        interval = parse_interval(interval)
        sessions = needs_sessions(names, flt)
        if interval == "hour":
            if flt is not None or sessions:
                raise QueryError("interval=hour answers visitors and pageviews without filters only")
            return {
                "results": [
                    {
                        "date": dt.datetime.fromtimestamp(b.start / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
                        **values(b.count, None, names),
                    }
                    for b in stats.hourly(site_id, days)
                ]
            }
        dim_value = (flt.dimension, flt.value) if flt else ()
        if interval == "date":
            chunks = [(str(d), DayRange(d, d)) for d in days.days()]
        else:
            chunks, first = [], days.first
            while first <= days.last:
                last = min(days.last, month_end(first))
                chunks.append((first.replace(day=1).isoformat(), DayRange(first, last)))
                first = last + dt.timedelta(days=1)
        return {
            "results": [
                {
                    "date": label,
                    **values(
                        stats.aggregate(site_id, rng, *dim_value),
                        stats.visits(site_id, rng) if sessions else None,
                        names,
                    ),
                }
                for label, rng in chunks
            ]
        }

    @router.get("/breakdown", summary="Top values of a property")
    def breakdown(
        site_id: str = SiteId,
        property: str = Query(
            ...,
            # noqa: A002 (Plausible's name)
            description="visit:browser, visit:os, visit:device, visit:source or event:page",
        ),
        period: str = Period,
        date: str | None = Date,
        metrics: str = Metrics,
        filters: str | None = Filters,
        limit: int = Query(100, description="1..1000"),
    ):
        days, names, flt = parse_period(period, date, today()), parse_metrics(metrics), parse_filters(filters)
        dimension, limit = parse_property(property), parse_limit(limit)
        if any(m in SESSION_METRICS for m in names):
            raise QueryError("breakdowns answer visitors and pageviews (session metrics: use aggregate)")
        if flt is not None and flt.dimension != dimension:
            raise QueryError(
                "a breakdown can only be filtered on its own property (the views are aggregated per dimension)"
            )
        rows = stats.breakdown(site_id, dimension, days, limit if flt is None else BREAKDOWN_DEPTH)
        if flt is not None:
            rows = [r for r in rows if r.value == flt.value]
        key = property.split(":", 1)[1]
        return {"results": [{key: r.value, **values(r.count, None, names)} for r in rows[:limit]]}

    @router.get("/realtime/visitors", summary="Visitors in the last 5 minutes")
    def realtime_visitors(site_id: str = SiteId) -> int:
        return stats.realtime_visitors(site_id)

    return router
