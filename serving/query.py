"""Stats API v1 parameters (Plausible's) -> the parts of a validated query. Pure: no I/O, no SQL.

Every value is checked against a closed set here, so nothing a client sends is ever pasted into
a query string further down; a bad parameter is a QueryError (-> 400) that says what is allowed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

PERIODS = ("day", "7d", "30d", "month", "6mo", "12mo", "custom")
INTERVALS = ("date", "month", "hour")
METRICS = (
    "visitors",
    "pageviews",
    "visits",
    "bounce_rate",
    "visit_duration",
    "views_per_visit",
    "events",
    "conversion_rate",  # with an event:goal filter or breakdown
)
MAX_HOURLY_DAYS = 31  # interval=hour: at most this many days of hours


@dataclass(frozen=True)
class DayRange:
    first: dt.date
    last: dt.date  # inclusive

    def __post_init__(self):
        if self.last < self.first:
            raise QueryError(f"date range ends ({self.last}) before it starts ({self.first})")

    def days(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=i) for i in range((self.last - self.first).days + 1)]


class QueryError(ValueError):
    """A client error: the message is returned as-is in the 400 response."""


class StoreUnavailable(RuntimeError):
    """The store could not answer in time (or at all): a 503 with the message."""


def parse_date(value: str, name: str = "date") -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise QueryError(f"{name}={value!r} is not a date: use YYYY-MM-DD") from None


def month_start(day: dt.date, months_back: int = 0) -> dt.date:
    index = day.year * 12 + day.month - 1 - months_back
    return dt.date(index // 12, index % 12 + 1, 1)


def month_end(day: dt.date) -> dt.date:
    return month_start(day, -1) - dt.timedelta(days=1)


def parse_period(period: str, date: str | None, today: dt.date) -> DayRange:
    """Plausible's periods: ``date`` is the reference day (default today), or ``D1,D2`` for custom."""
    if period not in PERIODS:
        raise QueryError(f"unknown period {period!r}; one of {', '.join(PERIODS)}")
    if period == "custom":
        if not date or date.count(",") != 1:
            raise QueryError("period=custom needs date=YYYY-MM-DD,YYYY-MM-DD")
        first, last = (parse_date(d.strip()) for d in date.split(","))
        if last < first:
            raise QueryError(f"date range ends ({last}) before it starts ({first})")
        return DayRange(first, last)
    ref = parse_date(date) if date else today
    if period == "day":
        return DayRange(ref, ref)
    if period in ("7d", "30d"):
        return DayRange(ref - dt.timedelta(days=int(period[:-1]) - 1), ref)
    if period == "month":
        return DayRange(month_start(ref), month_end(ref))
    months = int(period.removesuffix("mo"))
    return DayRange(month_start(ref, months - 1), month_end(ref))


def parse_metrics(metrics: str) -> list[str]:
    names = [m.strip() for m in metrics.split(",") if m.strip()]
    if not names:
        raise QueryError(f"metrics is empty; any of {', '.join(METRICS)}")
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise QueryError(f"unknown metric {unknown[0]!r}; any of {', '.join(METRICS)}")
    return list(dict.fromkeys(names))


def parse_interval(interval: str) -> str:
    if interval not in INTERVALS:
        raise QueryError(f"unknown interval {interval!r}; one of {', '.join(INTERVALS)}")
    return interval


def parse_limit(limit: int) -> int:
    if not 1 <= limit <= 1000:
        raise QueryError(f"limit={limit} is out of range 1..1000")
    return limit


def parse_page(page: int) -> int:
    if not 1 <= page <= 10_000:
        raise QueryError(f"page={page} is out of range 1..10000")
    return page
