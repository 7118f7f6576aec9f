"""The site page's realtime view: the last 30 minutes from the real-time store (the speed rows,
one per minute): visitors and pageviews, a point per minute, top pages and sources."""

from __future__ import annotations

from serving.analytics.engine import Analytics
from serving.realtime.interface import MINUTE, realtime_range

MINUTES = 30


def last_minutes(analytics: Analytics, site: str, minutes: int = MINUTES, rows: int = 10) -> dict:
    out = {
        "minutes": minutes,
        "visitors_now": 0,
        "visitors": 0,
        "pageviews": 0,
        "series": [],
        "pages": [],
        "sources": [],
    }
    live = analytics.live
    if live is None:
        return out
    start, end = realtime_range(int(analytics.clock() * 1000), minutes)
    total = live.totals(site, start, end)
    out.update(visitors_now=analytics.realtime_visitors(site), visitors=total.visitors, pageviews=total.pageviews)
    out["series"] = [
        {"minute": b.start, "visitors": b.count.visitors, "pageviews": b.count.pageviews}
        for b in live.timeseries(site, start, end, MINUTE)
    ]
    for key, dimension in (("pages", "page"), ("sources", "source")):
        out[key] = [
            {dimension: r.value, "visitors": r.count.visitors, "pageviews": r.count.pageviews}
            for r in live.top(site, dimension, start, end, rows)
        ]
    return out
