"""UTC days, the unit the batch layer closes and the stats API's periods are made of."""

from __future__ import annotations

import datetime as dt

DAY_MS = 86_400_000


def day_bounds(day: dt.date) -> tuple[int, int]:
    """[start, end) of a UTC day in ms since epoch."""
    start = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)
    return start, start + DAY_MS
