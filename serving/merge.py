"""The Lambda merge: one answer for any range of UTC days from the two views.

Days up to the batch watermark come from the batch views (exact, corrected); later days from the
real-time store. Pageviews add up; visitors over a range are one union of the parts' HLL
sketches (batch views and speed rows carry the same DataSketches format). Visitor ids rotate
with the daily salt, so days never share visitors: for a range of closed days only, the exact
daily counts simply add up, and that exact sum is what is returned.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from events.days import day_bounds
from events.sketches import estimate_and_merge
from serving.batch.views import BatchViews, count_of
from serving.realtime.interface import Bucket, Count, Ranked, RealtimeStore, check_dimension

# How many values per day part a breakdown merges: a value outside every part's top-N is missed,
# as in any top-N merge; well above any dashboard's limit.
BREAKDOWN_DEPTH = 1000
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class DayRange:
    first: dt.date
    last: dt.date  # inclusive

    def __post_init__(self):
        if self.last < self.first:
            raise ValueError(f"range ends ({self.last}) before it starts ({self.first})")

    def days(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=i) for i in range((self.last - self.first).days + 1)]


@dataclass(frozen=True)
class Plan:
    """Which part of a range each view answers."""

    batch_days: list[dt.date]
    live: tuple[int, int] | None  # [start, end) ms for the real-time store


@dataclass(frozen=True)
class Visits:
    visits: int
    bounces: int
    pageviews: int
    duration_ms: int

    @property
    def bounce_rate(self) -> int:
        return round(100 * self.bounces / self.visits) if self.visits else 0

    @property
    def visit_duration_s(self) -> int:
        return round(self.duration_ms / 1000 / self.visits) if self.visits else 0


class MergedStats:
    def __init__(self, views: BatchViews, store: RealtimeStore, clock: Callable[[], float] = time.time):
        self.views = views
        self.store = store
        self.clock = clock

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def plan(self, days: DayRange) -> Plan:
        watermark = self.views.watermark()
        batch = [d for d in days.days() if watermark is not None and d <= watermark]
        first_live = days.first if not batch else batch[-1] + dt.timedelta(days=1)
        if first_live > days.last:
            return Plan(batch, None)
        start, end = day_bounds(first_live)[0], min(day_bounds(days.last)[1], self.now_ms() + 1)
        return Plan(batch, (start, end) if end > start else None)

    # --- per-day batch rows ----------------------------------------------------------------------
    def _batch_rows(self, site: str, day: dt.date, dimension: str, value: str | None = None) -> list[dict]:
        return [
            r
            for r in self.views.rows("daily", day)
            if r["site"] == site and r["dimension"] == dimension and (value is None or r["value"] == value)
        ]

    # --- answers ---------------------------------------------------------------------------------
    def aggregate(self, site: str, days: DayRange, dimension: str = "total", value: str = "") -> Count:
        """Totals of a site over days; with a dimension and value, of that value only (a filter)."""
        plan = self.plan(days)
        parts = [count_of(r) for d in plan.batch_days for r in self._batch_rows(site, d, dimension, value)]
        if plan.live is not None:
            if dimension == "total":
                parts.append(self.store.totals(site, *plan.live))
            else:
                parts.extend(
                    r.count
                    for r in self.store.top(site, dimension, *plan.live, limit=BREAKDOWN_DEPTH)
                    if r.value == value
                )
        return _exact_or_union(parts, plan.live is None)

    def hourly(self, site: str, days: DayRange) -> list[Bucket]:
        """Hours come from the real-time store (its minute rollups): the batch views are daily."""
        return self.store.timeseries(site, day_bounds(days.first)[0], day_bounds(days.last)[1], HOUR_MS)

    def breakdown(self, site: str, dimension: str, days: DayRange, limit: int = 10) -> list[Ranked]:
        check_dimension(dimension)
        plan = self.plan(days)
        per_value: dict[str, list[Count]] = defaultdict(list)
        for d in plan.batch_days:
            for r in self._batch_rows(site, d, dimension):
                per_value[r["value"]].append(count_of(r))
        if plan.live is not None:
            for ranked in self.store.top(site, dimension, *plan.live, limit=BREAKDOWN_DEPTH):
                per_value[ranked.value].append(ranked.count)
        merged = [Ranked(value, _exact_or_union(parts, plan.live is None)) for value, parts in per_value.items()]
        return sorted(merged, key=lambda r: (-r.count.visitors, -r.count.pageviews, r.value))[:limit]

    def visits(self, site: str, days: DayRange) -> Visits | None:
        """Sessions exist only in the batch layer: None unless every day of the range is closed."""
        plan = self.plan(days)
        if plan.live is not None or not plan.batch_days:
            return None
        total = [0, 0, 0, 0]
        for d in plan.batch_days:
            for r in self.views.rows("sessions", d):
                if r["site"] == site and r["dimension"] == "total":
                    for i, name in enumerate(("visits", "bounces", "pageviews", "duration_ms")):
                        total[i] += r[name]
        return Visits(*total)

    def realtime_visitors(self, site: str, minutes: int = 5) -> int:
        return self.store.realtime_visitors(site, self.now_ms(), minutes)


def _exact_or_union(parts: list[Count], all_batch: bool) -> Count:
    """Pageviews add up. Visitors: the exact daily counts add up when every part is a closed day
    (daily visitor ids: days share no visitor); across the seam, one union of the sketches."""
    visitors, hll = estimate_and_merge(p.visitors_hll for p in parts)
    if all_batch:
        visitors = sum(p.visitors for p in parts)
    return Count(sum(p.pageviews for p in parts), visitors, hll)
