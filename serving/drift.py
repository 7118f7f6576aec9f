"""Speed view vs batch view for a closed day: how far the real-time numbers were from the exact
ones (lost or late events, duplicates across windows, sketch error). From the restatement log
(serving.store.restatements: what the API answered live, then final), or, for a day closed
before the log was kept, from the batch view and the real-time store."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from events.days import day_bounds
from serving.batch.views import BatchViews
from serving.realtime.interface import Count, RealtimeStore


@dataclass(frozen=True)
class Drift:
    site: str
    batch: Count
    speed: Count

    @staticmethod
    def _pct(speed: int, batch: int) -> float | None:
        return None if batch == 0 else round(100.0 * (speed - batch) / batch, 2)

    @property
    def pageviews_pct(self) -> float | None:
        # The batch daily view counts every event as a pageview; the speed rows count them as events.
        return self._pct(self.speed.events, self.batch.pageviews)

    @property
    def visitors_pct(self) -> float | None:
        return self._pct(self.speed.visitors, self.batch.visitors)


def drift(views: BatchViews, store: RealtimeStore, day: dt.date) -> list[Drift]:
    """One row per site the batch view has for ``day``, most pageviews first."""
    start, end = day_bounds(day)
    rows = [Drift(site, batch, store.totals(site, start, end)) for site, batch in views.site_totals(day).items()]
    return sorted(rows, key=lambda r: (-r.batch.pageviews, r.site))


def drift_from_log(records: list[dict]) -> list[Drift]:
    """One row per site the log restated from live numbers, most pageviews first."""
    rows = {}
    for r in records:
        if r["source"] == "live" and r["site"] not in rows:  # the day's closing (re-runs come later)
            final, live = r["after"], r["before"]
            speed = Count(live["pageviews"], live["visitors"], "", live["pageviews"])
            rows[r["site"]] = Drift(r["site"], Count(final["pageviews"], final["visitors"], ""), speed)
    return sorted(rows.values(), key=lambda r: (-r.batch.pageviews, r.site))
