"""Raw retention: the nightly run removes the raw and bad raw days older than
PIXEL_RAW_RETENTION_DAYS (0: keep them all), and only days already closed (at or before the batch
watermark), so a day is never removed before its clean events and views exist. Clean events,
views and run summaries are kept: they are what the stats and the data scientists read."""

from __future__ import annotations

import datetime as dt
import logging

from core.lake import layout
from core.lake.storage import Storage
from core.lake.watermark import read_watermark

log = logging.getLogger(__name__)


def expired_days(storage: Storage, today: dt.date, retention_days: int) -> list[dt.date]:
    """The raw (and bad raw) days to remove: older than the retention and closed."""
    watermark = read_watermark(storage)
    if retention_days <= 0 or watermark is None:
        return []
    oldest_kept = today - dt.timedelta(days=retention_days)
    days = set(layout.days_of(storage.list_dirs(layout.RAW))) | set(layout.days_of(storage.list_dirs(layout.BAD_RAW)))
    return sorted(day for day in days if day < oldest_kept and day <= watermark)


def apply_raw_retention(storage: Storage, today: dt.date, retention_days: int) -> list[dt.date]:
    """Remove the expired raw days; the days removed."""
    days = expired_days(storage, today, retention_days)
    for day in days:
        for dataset in (layout.RAW, layout.BAD_RAW):
            storage.remove_dir(layout.day_dir(dataset, day))
    if days:
        log.info("raw retention (%d days): removed raw and bad raw of %s .. %s", retention_days, days[0], days[-1])
    return days
