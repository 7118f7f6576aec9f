"""Erasing a site (its owner's right to erasure): its rows out of every dataset of the lake.

``pixel sites delete SITE --purge`` first writes the purge request (layout.purge_request): the
serving process reads it at its next sync and drops the site from its stores (the closed days'
and the real-time one). Then ``purge_lake`` rewrites every file of the lake holding one of the
site's rows (raw, bad raw, bad rows, clean events, the views, Druid's hits), each replaced
atomically by its copy without them: a reader sees the old file or the new one. A day whose
clean events or views changed gets its run summary marked (``purged``), so a store that loaded
the day loads it again, from the erased lake.

Killed mid-way, it is run again: the files it rewrote hold nothing of the site and are read but
left as they are. Not reached: events still in Kafka when it runs (the lander lands them seconds
later: stop the site's tracking first) and Kafka's own copies, which expire with the topics'
retention.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.lake import layout
from core.lake.storage import Storage
from events.sites import normalize_site, site_of_line

log = logging.getLogger(__name__)

# Datasets of JSON lines (gzip) and of Parquet, by the name the summary reports them under.
LINE_DATASETS = {"raw": layout.RAW, "bad_raw": layout.BAD_RAW, "bad": layout.BAD}
PARQUET_DATASETS = {
    "clean": layout.CLEAN,
    "daily": f"{layout.VIEWS}/{layout.DAILY_VIEW}",
    "sessions": f"{layout.VIEWS}/{layout.SESSIONS_VIEW}",
    "druid_hits": layout.DRUID_HITS,
}
# A closed day's answers come from these: when they change, the stores load the day again.
_SERVED = ("clean", "daily", "sessions")


@dataclass
class Purged:
    rows: dict[str, int] = field(default_factory=dict)  # dataset -> rows removed
    files_rewritten: int = 0
    files_unreadable: list[str] = field(default_factory=list)  # left as they are: see the log
    days_restated: list[str] = field(default_factory=list)  # run summaries marked

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def request_purge(storage: Storage, site: str, now_ms: int | None = None) -> None:
    """Ask the serving process to drop the site's rows it holds from before now."""
    requested = int(time.time() * 1000) if now_ms is None else now_ms
    storage.write_atomic(layout.purge_request(site), json.dumps({"site": site, "requested_ms": requested}).encode())


def days_of_lake(storage: Storage) -> list[str]:
    """Every day any dataset holds (the units of the purge's progress)."""
    days: set[dt.date] = set()
    for dataset in (*LINE_DATASETS.values(), *PARQUET_DATASETS.values()):
        days.update(layout.days_of(storage.list_dirs(dataset)))
    return [str(day) for day in sorted(days)]


def purge_lake(storage: Storage, site: str, progress: Callable[[str], None] = lambda _day: None) -> Purged:
    """Remove the site's rows from every file of the lake; ``progress(day)`` after each day."""
    site = normalize_site(site)
    out = Purged(rows={name: 0 for name in (*LINE_DATASETS, *PARQUET_DATASETS)})
    for day in days_of_lake(storage):
        for name, dataset in LINE_DATASETS.items():
            for path in storage.list_files(layout.day_dir(dataset, day)):
                if path.endswith(".gz"):
                    out.rows[name] += _purge_lines(storage, path, site, out)
        found = []  # (dataset, path, its rows, which are the site's)
        for name, dataset in PARQUET_DATASETS.items():
            for path in storage.list_files(layout.day_dir(dataset, day)):
                if path.endswith(".parquet"):
                    data = storage.read(path)
                    mine = _site_rows(data, site)
                    if mine is not None:
                        found.append((name, path, data, mine))
        # The day's summary says "purging" while its served files change, "purged" after: a run
        # killed in between leaves "purging", and the next run ends it (new fingerprints both
        # times, so a store loading the day meanwhile loads it again at the end).
        if any(name in _SERVED for name, *_ in found):
            _mark_run(storage, day, site, done=False)
        for name, path, data, mine in found:
            out.rows[name] += _rewrite_parquet(storage, path, data, mine)
            out.files_rewritten += 1
        if _mark_run(storage, day, site, done=True):
            out.days_restated.append(day)
        progress(day)
    return out


def _purge_lines(storage: Storage, path: str, site: str, out: Purged) -> int:
    """One gzip file of JSON lines without the site's lines: rewritten, or deleted if none is left."""
    try:
        text = gzip.decompress(storage.read(path))
    except (OSError, EOFError, zlib.error):
        log.warning("%s is not a whole gzip file: left as it is, erase it by hand if it holds the site", path)
        out.files_unreadable.append(path)
        return 0
    if site.encode() not in text.lower():  # most files of a busy lake: no line names the site
        return 0
    lines = [line for line in text.split(b"\n") if line]
    kept = [line for line in lines if normalize_site(site_of_line(line)) != site]
    if len(kept) == len(lines):
        return 0
    if kept:
        storage.write_atomic(path, gzip.compress(b"\n".join(kept) + b"\n", 6, mtime=0))
    else:
        storage.delete(path)
    _forget_checksum(storage, path)
    out.files_rewritten += 1
    return len(lines) - len(kept)


def _site_rows(data: bytes, site: str):
    """A Parquet file's rows of the site (a boolean mask), or None if it holds none."""
    file = pq.ParquetFile(io.BytesIO(data))
    if "site" not in file.schema_arrow.names:
        return None
    names = pc.utf8_lower(pc.utf8_trim_whitespace(file.read(columns=["site"]).column("site")))
    mine = pc.fill_null(pc.or_(pc.equal(names, site), pc.equal(names, f"www.{site}")), False)
    return mine if pc.any(mine).as_py() else None


def _rewrite_parquet(storage: Storage, path: str, data: bytes, mine) -> int:
    """The file without the rows of ``mine``, with its schema, metadata and compression."""
    file = pq.ParquetFile(io.BytesIO(data))
    table = file.read().filter(pc.invert(mine))
    codec = file.metadata.row_group(0).column(0).compression if file.metadata.num_row_groups else "ZSTD"
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="none" if codec == "UNCOMPRESSED" else codec.lower())
    storage.write_atomic(path, buffer.getvalue())
    _forget_checksum(storage, path)
    return len(mine) - table.num_rows


def _forget_checksum(storage: Storage, path: str) -> None:
    """Spark's local writes leave a ``.<name>.crc`` beside each file; a stale one fails its reads."""
    folder, name = path.rsplit("/", 1)
    storage.delete(f"{folder}/.{name}.crc")


def _mark_run(storage: Storage, day: str, site: str, done: bool) -> bool:
    """Name the site in the day's run summary, as ``purging`` (not ``done``) or ``purged``; True
    when ``done`` ended a purge of the site there."""
    path = layout.run_summary(day)
    if not storage.exists(path):
        return False
    summary = json.loads(storage.read(path))
    purging = set(summary.get("purging", []))
    if done and site not in purging:
        return False
    if done:
        summary["purged"] = sorted({*summary.get("purged", []), site})
    summary["purging"] = sorted(purging - {site} if done else purging | {site})
    storage.write_atomic(path, json.dumps(summary, indent=1).encode())
    return done
