"""Compaction of a day's raw files: one file per hour folder and partition, named by the merged
offset range, every line once; killed half-way, nothing lost and a re-run finishes; a file
landed later (a re-landing, a late offset) is merged the next time, never dropped."""

from __future__ import annotations

import datetime as dt
import gzip

import pytest

from batch_layer.compaction import compact_day, compact_folder
from core.lake import layout
from core.lake.storage import FileStorage

pytestmark = pytest.mark.fast
DAY = dt.date(2026, 11, 20)
HOUR = layout.hour_dir(layout.RAW, DAY, 10)


def land(storage, partition: int, first: int, last: int, folder: str = HOUR) -> None:
    """What the lander writes: the offsets' lines (here every offset of the range)."""
    lines = b"\n".join(b'{"event_id":"p%d-o%d"}' % (partition, o) for o in range(first, last + 1)) + b"\n"
    storage.write_atomic(f"{folder}/{layout.landed_file_name(partition, first, last)}", gzip.compress(lines))


def lines_of(storage, folder: str = HOUR) -> list[bytes]:
    return [
        line for path in storage.list_files(folder) for line in gzip.decompress(storage.read(path)).split(b"\n") if line
    ]


def test_each_partition_becomes_one_file_in_offset_order(tmp_path):
    storage = FileStorage(tmp_path)
    for first in range(0, 100, 10):
        land(storage, 0, first, first + 9)
    land(storage, 1, 5, 7)
    land(storage, 1, 8, 8)
    land(storage, 0, 0, 3, folder=layout.hour_dir(layout.BAD_RAW, DAY, 10))
    before = sorted(lines_of(storage))
    done = compact_day(storage, DAY)
    assert (done.files_before, done.files_after) == (13, 3)
    assert [p.rsplit("/", 1)[1] for p in storage.list_files(HOUR)] == ["0-0-99.jsonl.gz", "1-5-8.jsonl.gz"]
    assert sorted(lines_of(storage)) == before  # every line once
    merged = gzip.decompress(storage.read(f"{HOUR}/0-0-99.jsonl.gz")).split(b"\n")[:3]
    assert merged == [b'{"event_id":"p0-o0"}', b'{"event_id":"p0-o1"}', b'{"event_id":"p0-o2"}']
    assert compact_day(storage, DAY).files_before == 3  # a second run changes nothing


def test_killed_half_way_loses_nothing_and_a_rerun_finishes(tmp_path, monkeypatch):
    storage = FileStorage(tmp_path)
    for first in range(0, 50, 10):
        land(storage, 0, first, first + 9)
    wanted = sorted(lines_of(storage))
    real_delete, deleted = storage.delete, []

    def delete_twice_then_die(path: str) -> None:
        if len(deleted) == 2:
            raise KeyboardInterrupt("killed")
        deleted.append(path)
        real_delete(path)

    monkeypatch.setattr(storage, "delete", delete_twice_then_die)
    with pytest.raises(KeyboardInterrupt):
        compact_folder(storage, HOUR)
    monkeypatch.setattr(storage, "delete", real_delete)
    assert set(lines_of(storage)) == set(wanted)  # all there (some twice: the job dedupes them)
    assert len(storage.list_files(HOUR)) == 4  # the merged file and three inputs not yet deleted
    compact_folder(storage, HOUR)
    assert storage.list_files(HOUR) == [f"{HOUR}/0-0-49.jsonl.gz"] and sorted(lines_of(storage)) == wanted


def test_files_landed_after_a_compaction_are_merged_never_dropped(tmp_path):
    storage = FileStorage(tmp_path)
    land(storage, 0, 0, 9)
    land(storage, 0, 20, 29)
    compact_folder(storage, HOUR)
    land(storage, 0, 0, 9)  # a re-landing of offsets already merged: the same lines
    # Offsets inside the merged range whose lines it lacks (landed after the compaction): kept.
    storage.write_atomic(f"{HOUR}/0-10-12.jsonl.gz", gzip.compress(b'{"event_id":"late"}\n'))
    compact_folder(storage, HOUR)
    assert storage.list_files(HOUR) == [f"{HOUR}/0-0-29.jsonl.gz"]
    got = lines_of(storage)
    assert len(got) == len(set(got)) == 21 and b'{"event_id":"late"}' in got


def test_an_unreadable_file_is_left_for_the_job_to_report(tmp_path):
    storage = FileStorage(tmp_path)
    land(storage, 0, 0, 9)
    land(storage, 0, 10, 19)
    whole = gzip.compress(b'{"event_id":"a"}\n' * 50)
    storage.write_atomic(f"{HOUR}/0-20-69.jsonl.gz", whole[: len(whole) // 2])  # cut short
    done = compact_folder(storage, HOUR)
    assert (done.files_before, done.files_after) == (3, 2)
    assert [p.rsplit("/", 1)[1] for p in storage.list_files(HOUR)] == ["0-0-19.jsonl.gz", "0-20-69.jsonl.gz"]


def test_an_event_kafka_delivered_twice_stays_twice(tmp_path):
    """The same line at two offsets is two deliveries, as landed: the job counts the duplicate."""
    storage = FileStorage(tmp_path)
    storage.write_atomic(f"{HOUR}/0-0-1.jsonl.gz", gzip.compress(b'{"event_id":"a"}\n{"event_id":"b"}\n'))
    storage.write_atomic(f"{HOUR}/0-2-2.jsonl.gz", gzip.compress(b'{"event_id":"a"}\n'))
    compact_folder(storage, HOUR)
    assert lines_of(storage) == [b'{"event_id":"a"}', b'{"event_id":"b"}', b'{"event_id":"a"}']
