"""Compaction of a closed day's raw files: the lander writes one file per partition and flush (a
busy minute: a hundred small files); before the nightly job reads the day, each hour folder's
files of a partition become one, named by the merged offset range. Crash-safe:

1. the merged file is written atomically (a reader sees the old files, or the new one too);
2. only then are the files it holds deleted.

Killed between the two, the folder holds the merged file and some of its inputs: their events
twice, which the nightly job's deduplication counts once. Run again, compaction finishes: a
file whose offsets and lines a merged file already holds is a copy, left out of the merge; every
other file's lines go in, all of them (an event Kafka delivered twice stays twice, as landed).
So a file landed after a compaction (a re-landing, a late event) is merged next time, never lost.
"""

from __future__ import annotations

import datetime as dt
import gzip
import logging
import re
import zlib
from dataclasses import dataclass

from core.lake import layout
from core.lake.storage import Storage

log = logging.getLogger(__name__)
_LANDED = re.compile(r"(?:^|/)(\d+)-(\d+)-(\d+)\.jsonl\.gz$")


@dataclass
class Compacted:
    files_before: int = 0
    files_after: int = 0


def landed_range(path: str) -> tuple[int, int, int] | None:
    """(partition, first, last) of a landed file's name, or None."""
    match = _LANDED.search(path)
    return (int(match.group(1)), int(match.group(2)), int(match.group(3))) if match else None


def _lines(storage: Storage, path: str) -> list[bytes]:
    return [line for line in gzip.decompress(storage.read(path)).split(b"\n") if line]


def compact_folder(storage: Storage, folder: str) -> Compacted:
    """Merge each partition's files of one hour folder into one."""
    by_partition: dict[int, list[tuple[int, int, str]]] = {}
    for path in storage.list_files(folder):
        found = landed_range(path)
        if found is not None:
            partition, first, last = found
            by_partition.setdefault(partition, []).append((first, last, path))
    out = Compacted(files_before=sum(len(files) for files in by_partition.values()))
    for partition, files in sorted(by_partition.items()):
        if len(files) == 1:
            out.files_after += 1
            continue
        files.sort(key=lambda f: (f[0], -f[1]))  # by offset; a merged file before what it holds
        lines: list[bytes] = []
        kept: list[tuple[int, int, set[bytes]]] = []
        readable = []
        for first, last, path in files:
            try:
                found = _lines(storage, path)
            except (OSError, EOFError, zlib.error):  # left as it is: the job reports it, line by line
                log.warning("%s is not a whole gzip file: not compacted", path)
                continue
            readable.append((first, last, path))
            # Offsets a merged file holds, landed again (or left by an interrupted run): a copy.
            if any(f <= first and last <= la and set(found) <= held for f, la, held in kept):
                continue
            lines += found  # every line of new offsets, a redelivered event's twin too
            kept.append((first, last, set(found)))
        unreadable = {path for _f, _l, path in files} - {path for _f, _l, path in readable}
        out.files_after += len(files) - len(readable)
        if len(readable) < 2:
            out.files_after += len(readable)
            continue
        files = readable
        first, last = files[0][0], max(last for _f, last, _p in files)
        merged = f"{folder}/{layout.landed_file_name(partition, first, last)}"
        if merged in unreadable:  # never written over: it is what the job reports
            out.files_after += len(readable)
            continue
        storage.write_atomic(merged, gzip.compress(b"\n".join(lines) + b"\n", 6, mtime=0))
        for _first, _last, path in files:
            if path != merged:
                storage.delete(path)
        out.files_after += 1
    return out


def compact_day(storage: Storage, day: dt.date) -> Compacted:
    """Every hour folder of a day's raw and bad raw data."""
    total = Compacted()
    for dataset in (layout.RAW, layout.BAD_RAW):
        for hour_folder in storage.list_dirs(layout.day_dir(dataset, day)):
            folder = f"{layout.day_dir(dataset, day)}/{hour_folder}"
            done = compact_folder(storage, folder)
            total.files_before += done.files_before
            total.files_after += done.files_after
    if total.files_before:
        log.info("%s: %d raw files compacted into %d", day, total.files_before, total.files_after)
    return total
