"""Each closed day into Druid as batch rows: the index_parallel task (its documented shape, and
one schema with the Kafka supervisor's speed rows), its submission to the Overlord and the wait
for its end, and the serving process's sync submitting every closed or re-run day once.
The Overlord here is FakeOverlord, a MOCK (tests/fakes/overlord.py): no Druid runs here, so what
Druid does with the task (reading HDFS, building and replacing segments) is not exercised."""

from __future__ import annotations

import datetime as dt
import io
import json

import pyarrow.parquet as pq
import pytest

from serving.druid.batch_ingest import (
    SUPERVISOR_SPEC,
    DruidDays,
    DruidTaskFailed,
    Overlord,
    day_task,
    hdfs_input_root,
)
from serving.store.sync import LakeSync
from tests.fakes.overlord import FakeOverlord
from tests.serving.conftest import D1, D2, close_day, day1

pytestmark = pytest.mark.fast
ROOT = "hdfs://namenode:8020/pixel"


def test_the_task_replaces_one_day_of_the_supervisors_datasource():
    task = day_task(D1, ROOT)
    supervisor = json.loads(SUPERVISOR_SPEC.read_text())["spec"]["dataSchema"]
    schema, ingest_io = task["spec"]["dataSchema"], task["spec"]["ioConfig"]
    assert (
        task["type"] == "index_parallel"
        and ingest_io["type"] == task["spec"]["tuningConfig"]["type"] == "index_parallel"
    )
    assert schema["dataSource"] == supervisor["dataSource"]  # the SAME datasource as the speed rows
    # The speed rows' dimensions, then the visit's: its pages, and its numbers as longs.
    dims = schema["dimensionsSpec"]["dimensions"]
    assert dims[: len(supervisor["dimensionsSpec"]["dimensions"])] == supervisor["dimensionsSpec"]["dimensions"]
    assert dims[-7:] == [
        "entry_page",
        "exit_page",
        "props",
        *({"type": "long", "name": n} for n in ("visit", "visitor", "visit_hits", "visit_duration_ms")),
    ]
    assert schema["transformSpec"]["transforms"] == [{"type": "expression", "name": "is_bot", "expression": "'false'"}]
    # The speed rows' metrics, under the same names, built from the hits.
    assert {m["name"] for m in schema["metricsSpec"]} == {m["name"] for m in supervisor["metricsSpec"]}
    hll = next(m for m in schema["metricsSpec"] if m["name"] == "visitors_hll")
    assert (hll["type"], hll["fieldName"], hll["lgK"]) == ("HLLSketchBuild", "visitor", 12)
    pageviews = next(m for m in schema["metricsSpec"] if m["name"] == "pageviews")
    assert pageviews["filter"] == {"type": "selector", "dimension": "event", "value": "pageview"}
    assert schema["timestampSpec"] == {"column": "ts", "format": "millis"}
    assert schema["granularitySpec"]["intervals"] == ["2026-11-20T00:00:00Z/2026-11-21T00:00:00Z"]
    assert ingest_io["inputSource"] == {
        "type": "hdfs",
        "paths": f"{ROOT}/druid/hits/date=2026-11-20/part-00000.parquet",
    }
    assert ingest_io["inputFormat"]["type"] == "parquet"
    assert ingest_io["appendToExisting"] is False and ingest_io["dropExisting"] is True  # the day's speed segments go


def test_the_hits_druid_reads_carry_every_column_the_task_names(tmp_path):
    from core.lake.storage import FileStorage

    storage = FileStorage(tmp_path / "lake")
    close_day(storage, D1, day1())
    with FakeOverlord() as fake:
        druid = DruidDays(Overlord(fake.url), storage, ROOT, tmp_path / "druid-days.json", poll_s=0.01)
        LakeSync(storage, druid).sync_once()
    hits = pq.read_table(io.BytesIO(storage.read("druid/hits/date=2026-11-20/part-00000.parquet")))
    schema = day_task(D1, ROOT)["spec"]["dataSchema"]
    named = {d if isinstance(d, str) else d["name"] for d in schema["dimensionsSpec"]["dimensions"]}
    named |= {schema["timestampSpec"]["column"], "event", "visitor"}
    assert named - {"is_bot"} <= set(hits.column_names)  # is_bot: made by the task's transform
    assert hits.num_rows == len(day1()) and hits.column("visit").null_count == 0


def test_the_lake_root_as_druid_reads_it():
    assert hdfs_input_root("hdfs://nn:9870/pixel/") == "hdfs://nn:8020/pixel"
    assert hdfs_input_root("hdfs://nn:9870/pixel", "hdfs://nn:9000/x/") == "hdfs://nn:9000/x"
    with pytest.raises(ValueError, match="from HDFS"):
        hdfs_input_root("file:///data")


def test_a_task_is_submitted_and_followed_to_its_end():
    with FakeOverlord() as fake:
        overlord = Overlord(fake.url)
        task_id = overlord.run(day_task(D1, ROOT), poll_s=0.01)
        assert fake.tasks[task_id]["task"] == day_task(D1, ROOT) and fake.polls[task_id] == 2
        fake.fail_with = "java.io.FileNotFoundException: hdfs://... not found"
        with pytest.raises(DruidTaskFailed, match="FileNotFoundException"):
            overlord.run(day_task(D2, ROOT), poll_s=0.01)
        fake.refuse = True
        with pytest.raises(DruidTaskFailed, match="refused the task"):
            overlord.run(day_task(D2, ROOT), poll_s=0.01)
    with pytest.raises(DruidTaskFailed, match="did not answer"):
        Overlord(fake.url, timeout_s=1).submit(day_task(D1, ROOT))


def test_the_sync_submits_each_closed_or_rerun_day_once(tmp_path):
    from core.lake.storage import FileStorage

    storage = FileStorage(tmp_path / "lake")
    close_day(storage, D1, day1())
    with FakeOverlord() as fake:
        druid = DruidDays(Overlord(fake.url), storage, ROOT, tmp_path / "druid-days.json", poll_s=0.01)
        sync = LakeSync(storage, druid)
        fake.fail_with = "no segments"
        sync.sync_once()  # the task fails: D1 is not recorded, not final, and is tried again
        assert druid.loaded() == {} and sync.watermark == D1 - dt.timedelta(days=1)
        fake.fail_with = None
        sync.sync_once()
        assert list(druid.loaded()) == [D1] and sync.watermark == D1
        sync.sync_once()
        close_day(storage, D2, [])
        close_day(storage, D1, day1(), run="2")  # D1 re-run
        sync.sync_once()
        days = [t["task"]["spec"]["dataSchema"]["granularitySpec"]["intervals"][0][:10] for t in fake.tasks.values()]
        assert days == ["2026-11-20", "2026-11-20", "2026-11-20", "2026-11-21"]
        assert set(druid.loaded()) == {D1, D2} and dt.date(2026, 11, 22) not in druid.loaded()


def test_a_purge_request_reindexes_the_datasource_without_the_site(tmp_path):
    from batch_layer.purge import request_purge
    from core.lake import layout
    from core.lake.storage import FileStorage

    storage = FileStorage(tmp_path / "lake")
    before_ms = 1_795_000_000_000  # 2026-11-18 09:46:40 UTC
    request_purge(storage, "a.example", now_ms=before_ms)
    with FakeOverlord() as fake:
        sync = LakeSync(storage, DruidDays(Overlord(fake.url), storage, ROOT, tmp_path / "d.json", poll_s=0.01))
        fake.fail_with = "lock revoked"
        assert sync.apply_purges() == []  # failed: the request stays for the next sync
        assert storage.list_files(layout.PURGES) == [layout.purge_request("a.example")]
        fake.fail_with = None
        assert sync.apply_purges() == ["a.example"] and storage.list_files(layout.PURGES) == []
        task = list(fake.tasks.values())[-1]["task"]
    supervisor = json.loads(SUPERVISOR_SPEC.read_text())["spec"]["dataSchema"]
    schema, ingest_io = task["spec"]["dataSchema"], task["spec"]["ioConfig"]
    interval = "2000-01-01T00:00:00Z/2026-11-19T00:00:00Z"  # every day up to the purge's
    assert ingest_io["inputSource"] == {"type": "druid", "dataSource": supervisor["dataSource"], "interval": interval}
    assert schema["granularitySpec"]["intervals"] == [interval] and ingest_io["dropExisting"] is True
    assert schema["metricsSpec"] == supervisor["metricsSpec"]  # combining: longSum, HLLSketchMerge
    assert schema["timestampSpec"]["column"] == "__time"
    site, before = schema["transformSpec"]["filter"]["field"]["fields"]
    assert schema["transformSpec"]["filter"]["type"] == "not"
    assert site == {"type": "selector", "dimension": "site", "value": "a.example"}
    assert (before["dimension"], before["upper"], before["upperStrict"]) == ("__time", str(before_ms), True)
