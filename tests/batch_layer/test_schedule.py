"""When the nightly job runs and which days it closes; what `pixel batch` refuses (no Spark)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

from batch_layer.schedule import days_to_close, first_raw_day, last_closable_day, next_run_at
from core.lake.storage import FileStorage
from core.lake.watermark import advance_watermark, read_watermark
from tests.batch_layer.rawdata import RawDataset, event, ms
from tests.harness import make_settings, settings_env

pytestmark = pytest.mark.fast
UTC = dt.UTC


def at(day: int, hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hh, mm, tzinfo=UTC)


def d(day: int) -> dt.date:
    return dt.date(2026, 11, day)


def test_next_run_is_strictly_later():
    assert next_run_at(at(22, 1, 0), "02:30") == at(22, 2, 30)
    assert next_run_at(at(22, 2, 30), "02:30") == at(23, 2, 30)
    assert next_run_at(at(22, 23, 59), "00:00") == at(23, 0, 0)


def test_a_day_is_closable_once_its_lateness_window_has_passed():
    assert last_closable_day(at(22, 2, 0), 2) == d(21)
    assert last_closable_day(at(22, 1, 59), 2) == d(20)
    assert last_closable_day(at(22, 0, 0), 0) == d(21)


def test_days_to_close_follow_the_watermark_and_cap_the_catch_up():
    now = at(22, 3)
    assert days_to_close(now, d(21), d(1), 2, 7) == []
    assert days_to_close(now, d(19), d(1), 2, 7) == [d(20), d(21)]
    assert days_to_close(now, None, d(20), 2, 7) == [d(20), d(21)]
    assert days_to_close(now, None, d(1), 2, 3) == [d(18), d(19), d(20), d(21)]
    assert days_to_close(now, None, None, 2, 7) == []


def test_first_raw_day_and_the_watermark_never_moves_back(tmp_path):
    storage = FileStorage(tmp_path)
    assert first_raw_day(storage) is None
    raw = RawDataset(tmp_path)
    raw.write(d(19), 4, [event("e", ms(d(19), 4), "a.example")])
    raw.write(d(17), 23, [event("e", ms(d(17), 23), "a.example")])
    assert first_raw_day(storage) == d(17)
    assert read_watermark(storage) is None
    advance_watermark(storage, d(19))
    advance_watermark(storage, d(18))  # re-running an older day must not reopen later ones
    assert read_watermark(storage) == d(19)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--date", "2026-13-01"], "is not a date"),
        (["--date", "2999-01-01"], "can't be closed yet"),
        (["--from", "2026-11-20"], "--from and --to go together"),
        (["--from", "2026-11-20", "--to", "2026-11-19"], "is before --from"),
        (["--date", "2026-11-20", "--from", "2026-11-20", "--to", "2026-11-21"], "not both"),
    ],
)
def test_batch_refuses_bad_dates_with_a_message(tmp_path, args, message):
    env = settings_env(make_settings(tmp_path))
    out = subprocess.run(
        [sys.executable, "-m", "pixel.cli", "batch", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and message in " ".join(out.stderr.split()), out.stderr


def test_drift_refuses_a_day_without_a_batch_view(tmp_path):
    env = settings_env(make_settings(tmp_path))
    out = subprocess.run(
        [sys.executable, "-m", "pixel.cli", "drift", "--date", "2026-11-20"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "pixel batch --date 2026-11-20" in " ".join(out.stderr.split()), out.stderr


def test_raw_retention_removes_old_closed_days_only(tmp_path):
    """Raw and bad raw days older than the retention, and closed, go; open days, the clean events
    and the views stay; retention 0 keeps everything."""
    from batch_layer.retention import apply_raw_retention
    from batch_layer.schedule import Nightly

    storage = FileStorage(tmp_path)
    today = dt.date(2026, 12, 10)
    days = [today - dt.timedelta(days=n) for n in range(10, 0, -1)]  # Nov 30 .. Dec 9
    for day in days:
        RawDataset(tmp_path).write(day, 10, [event(f"e{day}", ms(day, 10), "a.example")])
        storage.write_atomic(f"badraw/date={day}/hour=10/0-0-0.jsonl.gz", b"")
        storage.write_atomic(f"clean/events/date={day}/part-00000.parquet", b"kept")
    advance_watermark(storage, dt.date(2026, 12, 2))  # closed through Dec 2
    assert apply_raw_retention(storage, today, 0) == []
    assert apply_raw_retention(storage, today, 5) == [dt.date(2026, 11, 30), dt.date(2026, 12, 1), dt.date(2026, 12, 2)]
    assert first_raw_day(storage) == dt.date(2026, 12, 3)
    assert storage.list_dirs("badraw")[0] == "date=2026-12-03"
    assert len(storage.list_dirs("clean/events")) == 10  # clean data is kept
    # Older than the retention but not closed yet: kept until the nightly job has closed it.
    assert apply_raw_retention(storage, today + dt.timedelta(days=30), 5) == []
    # The nightly scheduler applies it after its run.
    settings = make_settings(tmp_path, raw_retention_days=6)
    advance_watermark(storage, dt.date(2026, 12, 9))
    assert Nightly(settings).expire_raw(dt.datetime(2026, 12, 10, 3, tzinfo=dt.UTC)) == [dt.date(2026, 12, 3)]
