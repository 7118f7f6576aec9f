"""Answers a Query from both views, with the batch watermark as the seam.

Closed days (up to the store's watermark: loaded from the nightly job's output) are exact under
any filters and dimensions (the embedded store: serving.analytics.closed; on Druid, visitors are
HLL estimates: serving.druid.closed, and ``meta`` says so). Days after it come from the
real-time store's speed rows, one per minute, site and combination of property values:
any filters and dimensions over them too, for visitors (HLL estimates), pageviews and events. The
speed layer sees no visits, so a visit property there is the hit's own value, and the entry and
exit pages and the visit metrics are closed days' only: for such a query the open days are left
out and ``meta.warnings`` says so. A number is never made up.

Visitor ids rotate daily, so the closed and live parts never share visitors: their visitors add.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from events.days import day_bounds
from events.properties import LIVE_PROPERTIES
from events.sketches import RELATIVE_ERROR
from serving.analytics.goals import Goal, answer_with_goals, uses_goals
from serving.analytics.patterns import re2_problem
from serving.analytics.query import TIME_DIMENSIONS, Query, conditions, ordered
from serving.query import QueryError
from serving.realtime.interface import RealtimeStore

LIVE_METRICS = ("visitors", "pageviews", "events", "percentage")


class ClosedDays(Protocol):
    """Where the closed days are answered: serving.analytics.closed.EmbeddedClosed or
    serving.druid.closed.DruidClosed."""

    visitors_error: str | None  # the visitors' error bound (None: exact)

    def rows(self, query: Query, first: dt.date, last: dt.date, paginate: bool = True) -> list[tuple]:
        """Per group: its dimension values (d0..), metric values (m0..), and the number of groups."""

    def prop_keys(self, query: Query, first: dt.date, last: dt.date, limit: int) -> list[tuple[str, int]]:
        """The custom property keys over the closed days [first, last], with their events, most first."""


class Analytics:
    def __init__(
        self,
        closed: ClosedDays,
        watermark: Callable[[], dt.date | None],
        live: RealtimeStore | None,
        clock: Callable[[], float] = time.time,
        goals: Callable[[str], list[Goal]] = lambda site: [],
    ):
        self.closed = closed
        self.watermark = watermark
        self.live = live
        self.clock = clock
        self.goals = goals  # a site's goals (the registry's)

    def realtime_visitors(self, site: str, minutes: int = 5) -> int:
        """Visitors of the last ``minutes`` minutes (the speed rows)."""
        return self.live.realtime_visitors(site, int(self.clock() * 1000), minutes) if self.live else 0

    def prop_keys(self, query: Query, limit: int = 50) -> list[dict]:
        """The custom property keys of the query's events, with their events, most first: closed
        days only (the speed rows carry no properties)."""
        if uses_goals(query):
            raise QueryError("properties are listed without a goal filter: remove event:goal")
        watermark = self.watermark()
        if watermark is None or query.first > watermark:
            return []
        last = min(query.last, watermark)
        return [{"key": k, "events": n} for k, n in self.closed.prop_keys(query, query.first, last, limit)]

    def today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC).date()

    def answer(self, query: Query) -> dict:
        """Plausible's v2 response: results, meta, query."""
        patterns = [v for c in conditions(query.filters) if c.op.startswith("matches") for v in c.values]
        for pattern in patterns:
            problem = re2_problem(pattern)
            if problem:
                raise QueryError(f"matches pattern {pattern[:100]!r} is not a valid RE2 expression: {problem}")
        run = self._run
        if "conversion_rate" in query.metrics and not uses_goals(query):
            raise QueryError("conversion_rate needs goals: filter or break down by event:goal")
        if uses_goals(query):
            goals = self.goals(query.site)
            run = lambda q: answer_with_goals(q, goals, self._run)  # noqa: E731
        results, meta = run(query)
        if query.comparison:
            shifted = _shifted(query)
            previous, _ = run(replace(shifted, limit=query.limit + query.offset, offset=0))
            before = {tuple(r["dimensions"]): r["metrics"] for r in previous}
            for row in results:
                old = before.get(tuple(row["dimensions"]), [0] * len(query.metrics))
                row["comparison"] = {
                    "dimensions": row["dimensions"],
                    "metrics": old,
                    "change": [change(m, a, b) for m, a, b in zip(query.metrics, row["metrics"], old)],
                }
            meta["comparison_date_range"] = [str(shifted.first), str(shifted.last)]
        return {"results": results, "meta": meta, "query": _echo(query)}

    def _run(self, query: Query) -> tuple[list[dict], dict]:
        watermark = self.watermark()
        last = min(query.last, self.today())
        closed_last = min(last, watermark) if watermark is not None else None
        live_first = max(query.first, watermark + dt.timedelta(days=1)) if watermark else query.first
        meta: dict = {"final_through": str(watermark) if watermark else None, "warnings": []}
        live = None
        if live_first <= last:
            meta["provisional"] = [str(live_first), str(last)]
            reason = self._live_unsupported(query)
            if reason:
                meta["warnings"].append(
                    f"{live_first}..{last} is not closed yet and its speed rows can't answer this query "
                    f"({reason}): the results cover the closed days only"
                )
            else:
                live = self._live_rows(query, live_first, last)
        rows: dict[tuple, list] = {}
        order: list[tuple] = []
        total_rows = 0
        n = len(query.dimensions)
        if closed_last is not None and closed_last >= query.first:
            # With a live part to merge, the closed part is sorted and paged after the merge.
            for record in self.closed.rows(query, query.first, closed_last, paginate=live is None):
                key = tuple(record[:n])
                rows[key] = [_number(v) for v in record[n : n + len(query.metrics)]]
                order.append(key)
                total_rows = record[-1]
            meta["final"] = [str(query.first), str(closed_last)]
            if self.closed.visitors_error and any(m in ("visitors", "percentage") for m in query.metrics):
                meta["final_visitors_error"] = f"{self.closed.visitors_error} of the final part"
        if live is not None and any(m in ("visitors", "percentage") for m in query.metrics):
            # The open days' visitors are HLL estimates: ~95% of them within two standard errors.
            meta["provisional_visitors_error"] = f"±{2 * RELATIVE_ERROR:.1%} (95%) of the provisional part"
        if live:
            for key, values in live.items():
                rows[key] = [a + b for a, b in zip(rows.get(key, [0] * len(query.metrics)), values)]
            order = ordered(rows, query.metrics, query)
            total_rows = len(order)
            order = order[query.offset : query.offset + query.limit]
        if "percentage" in query.metrics:
            self._percentages(query, rows)
        if not meta["warnings"]:
            del meta["warnings"]
        if query.total_rows:
            meta["total_rows"] = total_rows
        return [{"dimensions": list(key), "metrics": rows[key]} for key in order], meta

    def _percentages(self, query: Query, rows: dict[tuple, list]) -> None:
        totals, _ = self._run(
            replace(query, dimensions=(), metrics=("visitors",), order_by=(), comparison=None, total_rows=False)
        )
        total = totals[0]["metrics"][0] if totals else 0
        i = query.metrics.index("percentage")
        for values in rows.values():
            values[i] = round(100 * values[i] / total, 1) if total else 0

    # --- the live part ---------------------------------------------------------------------------
    def _live_unsupported(self, query: Query) -> str | None:
        if self.live is None:
            return "no real-time store"
        if any(m not in LIVE_METRICS for m in query.metrics):
            return "visits, bounce rate, visit duration and views per visit come from closed days only"
        used = {d for d in query.dimensions if d not in TIME_DIMENSIONS} | {c.prop for c in conditions(query.filters)}
        if any(p not in LIVE_PROPERTIES for p in used):
            return "entry and exit pages and custom properties come from closed days only"
        return None

    def _live_rows(self, query: Query, first: dt.date, last: dt.date) -> dict[tuple, list]:
        """The open days' rows by the query's dimensions, under its filters (the speed rows carry
        the hit's own value of a visit property: the speed layer sees no visits)."""
        start, end = day_bounds(first)[0], min(day_bounds(last)[1], int(self.clock() * 1000) + 1)
        groups = [query.time_grain() if d in TIME_DIMENSIONS else d for d in query.dimensions]
        out: dict[tuple, list] = {}
        for *key, count in self.live.answer(query.site, start, end, groups, query.filters):
            out[tuple(key)] = [
                count.visitors
                if m in ("visitors", "percentage")
                else count.events
                if m == "events"
                else count.pageviews
                for m in query.metrics
            ]
        return out


def _number(value):
    """A metric's value as JSON takes it: a rate over no visits (NULL, NaN) is 0."""
    if value is None or not math.isfinite(float(value)):
        return 0
    return int(value) if float(value).is_integer() else float(value)


def change(metric: str, now, before):
    """A metric's change against an earlier period: points for rates, else percent."""
    if metric in ("bounce_rate", "percentage"):
        return round(now - before, 1)
    if not before:
        return 100 if now else 0
    return round(100 * (now - before) / before)


def _shifted(query: Query) -> Query:
    if query.comparison == "year_over_year":

        def back(d: dt.date) -> dt.date:
            return (
                d.replace(year=d.year - 1) if not (d.month == 2 and d.day == 29) else d.replace(year=d.year - 1, day=28)
            )

        return replace(query, first=back(query.first), last=back(query.last), comparison=None)
    span = query.days()
    return replace(
        query, first=query.first - dt.timedelta(days=span), last=query.first - dt.timedelta(days=1), comparison=None
    )


def _echo(query: Query) -> dict:
    return {
        "site_id": query.site,
        "metrics": list(query.metrics),
        "date_range": [str(query.first), str(query.last)],
        "dimensions": list(query.dimensions),
        "order_by": [list(o) for o in query.order_by],
        "pagination": {"limit": query.limit, "offset": query.offset},
    }
