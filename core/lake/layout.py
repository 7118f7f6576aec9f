"""Every path of the data lake, and their parsing. Paths are relative to the store's root (file://
or hdfs://, see core.lake.storage) and always use '/'.

    raw/date=D/hour=HH/<partition>-<first>-<last>.jsonl.gz   the master dataset (lander)
    badraw/date=D/hour=HH/<partition>-<first>-<last>.jsonl.gz bad rows as they arrived (lander)
    _lander/<topic>/p<partition>.json                        the lander's durable positions
    bad/date=D/                                              a closed day's bad rows (batch)
    clean/events/date=D/part-*.parquet                       a closed day's clean events (batch)
    _staging/clean/date=D/                                   ... while being written
    views/daily/date=D/, views/sessions/date=D/              a closed day's views (batch)
    views/rejected/date=D/                                   ... its rejected events per site (batch)
    views/_runs/date=D.json                                  a closed day's run summary
    views/_watermark                                         the last closed day
    druid/hits/date=D/part-00000.parquet                     a closed day's hits and visits, as
                                                             Druid ingests them (pixel serve)
    views/_restatements/<hash of site>.jsonl                 a site's restatements: per load of a
                                                             closed day, its numbers before and
                                                             after (pixel serve)
    _purges/<site>.json                                      a site's erasure, until the serving
                                                             process has dropped it from its stores

Raw and bad-raw file names derive from offsets, so landing the same offsets again rewrites the
same file instead of adding a second copy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

RAW = "raw"
BAD_RAW = "badraw"
BAD = "bad"
CLEAN = "clean/events"
VIEWS = "views"
DAILY_VIEW = "daily"
SESSIONS_VIEW = "sessions"
REJECTED_VIEW = "rejected"  # per site, reason and bot family: the day's rejected events
LANDER = "_lander"
STAGING = "_staging"
WATERMARK = f"{VIEWS}/_watermark"
DRUID_HITS = "druid/hits"
PURGES = "_purges"

_HOUR_PLACE = re.compile(r"(?:^|/)date=(\d{4}-\d{2}-\d{2})/hour=(\d{2})/")


def day_dir(dataset: str, day: dt.date | str) -> str:
    """``<dataset>/date=D``: one day of a dataset (RAW, BAD_RAW, BAD, CLEAN, a view's path)."""
    return f"{dataset}/date={day}"


def hour_dir(dataset: str, day: dt.date | str, hour: int) -> str:
    """``<dataset>/date=D/hour=HH`` (RAW, BAD_RAW)."""
    return f"{day_dir(dataset, day)}/hour={hour:02d}"


def hour_dir_of(dataset: str, ts_ms: int) -> str:
    """The hour folder of a UTC timestamp in milliseconds."""
    t = dt.datetime.fromtimestamp(ts_ms / 1000, tz=dt.UTC)
    return hour_dir(dataset, t.date(), t.hour)


def landed_file_name(partition: int, first: int, last: int) -> str:
    """A landed file's name: the partition and the first and last (logical) offsets it holds."""
    return f"{partition}-{first}-{last}.jsonl.gz"


def hour_place(path: str) -> tuple[str, int] | None:
    """(date, hour) of a file under a ``date=D/hour=HH/`` folder; None for any other path."""
    match = _HOUR_PLACE.search(path)
    return (match.group(1), int(match.group(2))) if match else None


def days_of(folder_names: list[str]) -> list[dt.date]:
    """The days named by ``date=D`` folder names (others ignored), in order."""
    days = []
    for name in folder_names:
        if name.startswith("date="):
            try:
                days.append(dt.date.fromisoformat(name.removeprefix("date=")))
            except ValueError:
                continue
    return sorted(days)


def view_dir(view: str, day: dt.date | str) -> str:
    """``views/<view>/date=D`` (DAILY_VIEW, SESSIONS_VIEW)."""
    return day_dir(f"{VIEWS}/{view}", day)


def clean_staging_dir(day: dt.date | str) -> str:
    """Where a run writes day D's clean events before publishing them to ``day_dir(CLEAN, D)``."""
    return day_dir(f"{STAGING}/clean", day)


def run_summary(day: dt.date | str) -> str:
    return f"{VIEWS}/_runs/date={day}.json"


RESTATEMENTS = f"{VIEWS}/_restatements"


def restatement_log(site: str) -> str:
    """A site's restatement log (serving.store.restatements): one file per site, named by a hash
    of its name (a site's name comes from traffic: any characters, any length)."""
    return f"{RESTATEMENTS}/{hashlib.sha256(site.encode()).hexdigest()[:32]}.jsonl"


def purge_request(site: str) -> str:
    """A site's erasure request (batch_layer.purge writes it, serving.store.sync applies it)."""
    return f"{PURGES}/{site}.json"


def lander_position(topic: str, partition: int) -> str:
    return f"{LANDER}/{topic}/p{partition}.json"


def run_summary_day(path: str) -> dt.date | None:
    """The day a run summary (``run_summary``) is about; None for any other path."""
    name = path.rsplit("/", 1)[-1]
    if not (path.startswith(f"{VIEWS}/_runs/") and name.startswith("date=") and name.endswith(".json")):
        return None
    try:
        return dt.date.fromisoformat(name.removeprefix("date=").removesuffix(".json"))
    except ValueError:
        return None


def druid_hits_file(day: dt.date | str) -> str:
    """A closed day's hits (serving.store.schema) for Druid's batch ingestion."""
    return f"{day_dir(DRUID_HITS, day)}/part-00000.parquet"
