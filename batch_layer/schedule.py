"""Which days a batch run closes, and the nightly schedule `pixel up` runs: close the previous
day, and catch up days missed while the platform was down. Each nightly run is a child process
(batch_layer.submit), so Spark's JVM (~1 GB) only exists while a job runs.
"""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
import threading

from batch_layer.retention import apply_raw_retention
from core.lake import layout
from core.lake.storage import Storage, open_storage
from core.lake.watermark import read_watermark
from core.settings import Settings

log = logging.getLogger(__name__)


def next_run_at(now: dt.datetime, hh_mm: str) -> dt.datetime:
    """The first HH:MM (UTC) strictly after ``now``."""
    hour, minute = map(int, hh_mm.split(":"))
    run = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return run if run > now else run + dt.timedelta(days=1)


def last_closable_day(now: dt.datetime, lateness_hours: int) -> dt.date:
    """Day D can be closed once D+1 00:00 + the lateness window has passed."""
    return (now - dt.timedelta(hours=lateness_hours)).date() - dt.timedelta(days=1)


def parse_day(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise DayRangeError(f"{value!r} is not a date: use YYYY-MM-DD (UTC)", option) from None


class DayRangeError(ValueError):
    """A day range that can't be run, with the option it came from."""

    def __init__(self, message: str, option: str | None = None):
        super().__init__(message)
        self.option = option


def days_to_run(
    date: str | None, first: str | None, last: str | None, now: dt.datetime, lateness_hours: int
) -> list[dt.date]:
    """The days a batch run closes: ``date``, or ``first`` .. ``last``, or else the last closable
    day. Refuses a day that can't be closed yet (late events may still land)."""
    closable = last_closable_day(now, lateness_hours)
    if date and (first or last):
        raise DayRangeError("give --date, or --from/--to, not both")
    if date:
        days = [parse_day(date, "--date")]
    elif first or last:
        if not (first and last):
            raise DayRangeError("--from and --to go together")
        start, end = parse_day(first, "--from"), parse_day(last, "--to")
        if end < start:
            raise DayRangeError(f"--to {end} is before --from {start}")
        days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    else:
        days = [closable]
    if days[-1] > closable:
        raise DayRangeError(
            f"{days[-1]} can't be closed yet: late events may still land until "
            f"{days[-1] + dt.timedelta(days=1)} {lateness_hours:02d}:00 UTC "
            f"(PIXEL_BATCH_LATENESS_HOURS). The last closable day is {closable}."
        )
    return days


def days_to_close(
    now: dt.datetime, watermark: dt.date | None, first_raw_day: dt.date | None, lateness_hours: int, catchup_days: int
) -> list[dt.date]:
    """Days after the watermark (or from the first raw data) up to the last closable day,
    at most ``catchup_days + 1`` of them (the most recent)."""
    last = last_closable_day(now, lateness_hours)
    if watermark is not None:
        first = watermark + dt.timedelta(days=1)
    elif first_raw_day is not None:
        first = first_raw_day
    else:
        return []
    first = max(first, last - dt.timedelta(days=catchup_days))
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def first_raw_day(storage: Storage) -> dt.date | None:
    days = layout.days_of(storage.list_dirs(layout.RAW))
    return days[0] if days else None


class Nightly:
    """Runs the batch job (batch_layer.submit) for every day that's due, then sleeps until the next HH:MM."""

    def __init__(self, settings: Settings, env: dict[str, str] | None = None):
        self.settings = settings
        self.env = env
        self.stop_event = threading.Event()
        self.child: subprocess.Popen | None = None

    def due(self, now: dt.datetime) -> list[dt.date]:
        storage = open_storage(self.settings.storage_root, self.settings.hdfs_user)
        return days_to_close(
            now,
            read_watermark(storage),
            first_raw_day(storage),
            self.settings.batch_lateness_hours,
            self.settings.batch_catchup_days,
        )

    def run_once(self, now: dt.datetime) -> int:
        days = self.due(now)
        if not days:
            log.info("nothing to close (watermark is current)")
            self.expire_raw(now)
            return 0
        log.info("closing %s .. %s", days[0], days[-1])
        cmd = [sys.executable, "-m", "batch_layer.submit", "--from", str(days[0]), "--to", str(days[-1])]
        self.child = subprocess.Popen(cmd, env=self.env)
        code = self.child.wait()
        self.child = None
        if code:
            log.error("batch run for %s .. %s failed (exit %d); retried at the next run", days[0], days[-1], code)
        self.expire_raw(now)
        return code

    def expire_raw(self, now: dt.datetime) -> list[dt.date]:
        """Raw days past PIXEL_RAW_RETENTION_DAYS, closed ones only (batch_layer.retention)."""
        storage = open_storage(self.settings.storage_root, self.settings.hdfs_user)
        return apply_raw_retention(storage, now.date(), self.settings.raw_retention_days)

    def run(self) -> None:
        while not self.stop_event.is_set():
            now = dt.datetime.now(dt.UTC)
            self.run_once(now)
            wake = next_run_at(dt.datetime.now(dt.UTC), self.settings.batch_schedule_utc)
            log.info("next nightly run at %s", wake.isoformat(timespec="minutes"))
            self.stop_event.wait((wake - dt.datetime.now(dt.UTC)).total_seconds())

    def stop(self) -> None:
        self.stop_event.set()
        if self.child is not None and self.child.poll() is None:
            self.child.terminate()
