"""The storage contract, run on file:// and on hdfs:// (against FakeWebHDFS, a mock namenode:
see tests/fakes/webhdfs.py for what that does and does not exercise)."""

from __future__ import annotations

import time

import pytest

from core.lake.storage import FileStorage, HdfsStorage, open_storage
from tests.fakes.webhdfs import FakeWebHDFS

pytestmark = pytest.mark.fast


@pytest.fixture(params=["file", "hdfs"])
def store(request, tmp_path):
    if request.param == "file":
        yield FileStorage(tmp_path / "store")
    else:
        with FakeWebHDFS(tmp_path / "namenode") as fake:
            yield open_storage(f"hdfs://127.0.0.1:{fake.port}/pixel")


def test_write_read_roundtrip(store):
    store.write_atomic("raw/date=2026-11-24/hour=08/0-0-9.jsonl.gz", b"abc")
    assert store.read("raw/date=2026-11-24/hour=08/0-0-9.jsonl.gz") == b"abc"
    assert store.exists("raw/date=2026-11-24/hour=08/0-0-9.jsonl.gz")
    assert not store.exists("raw/date=2026-11-24/hour=08/0-10-19.jsonl.gz")


def test_rewrite_replaces_never_duplicates(store):
    store.write_atomic("raw/d/0-0-9.jsonl.gz", b"first")
    store.write_atomic("raw/d/0-0-9.jsonl.gz", b"second")
    assert store.read("raw/d/0-0-9.jsonl.gz") == b"second"
    assert store.list_files("raw") == ["raw/d/0-0-9.jsonl.gz"]  # no temp files left behind


def test_list_is_recursive_sorted_and_relative(store):
    for p in ["raw/b/2.gz", "raw/a/1.gz", "raw/a/x/3.gz", "_lander/t/p0.json"]:
        store.write_atomic(p, b".")
    assert store.list_files("raw") == ["raw/a/1.gz", "raw/a/x/3.gz", "raw/b/2.gz"]
    assert store.list_files("missing") == []
    assert store.list_dirs("raw") == ["a", "b"] and store.list_dirs("raw/a") == ["x"]
    assert store.list_dirs("missing") == [] and store.list_dirs("raw/b") == []
    assert len(store.list_files()) == 4
    store.write_atomic("raw/a/1.gz", b"four")
    assert store.file_sizes("raw") == {"raw/a/1.gz": 4, "raw/a/x/3.gz": 1, "raw/b/2.gz": 1}
    assert store.file_sizes("missing") == {}


def test_a_stamp_changes_when_the_file_is_rewritten_and_only_then(store):
    store.write_atomic("v/_runs/a.json", b"run-1")
    store.write_atomic("v/_runs/b.json", b"run-1")
    before = store.file_stamps("v")
    assert set(before) == {"v/_runs/a.json", "v/_runs/b.json"} and store.file_stamps("missing") == {}
    assert store.file_stamps("v") == before
    time.sleep(0.05)  # past the clocks' resolution: HDFS ms, Linux file times one kernel tick (<= 10 ms)
    store.write_atomic("v/_runs/a.json", b"run-2")  # the same size: a re-run's summary
    after = store.file_stamps("v")
    assert after["v/_runs/a.json"] != before["v/_runs/a.json"] and after["v/_runs/b.json"] == before["v/_runs/b.json"]


def test_delete(store):
    store.write_atomic("a/b.gz", b".")
    store.delete("a/b.gz")
    assert not store.exists("a/b.gz")
    store.delete("a/b.gz")  # deleting what's gone is fine


def test_a_folder_is_removed_whole_or_replaced_by_another(store):
    for p in [
        "out/date=1/part-0.parquet",
        "out/date=1/part-1.parquet",
        "out/date=2/part-0.parquet",
        "_staging/date=1/part-0.parquet",
    ]:
        store.write_atomic(p, p.encode())
    store.replace_dir("_staging/date=1", "out/date=1")  # the old day's two parts are gone
    assert store.list_files("out") == ["out/date=1/part-0.parquet", "out/date=2/part-0.parquet"]
    assert store.read("out/date=1/part-0.parquet") == b"_staging/date=1/part-0.parquet"
    assert store.list_files("_staging") == []
    store.write_atomic("_staging/date=3/part-0.parquet", b"new")
    store.replace_dir("_staging/date=3", "fresh/out/date=3")  # no such folder, nor its parent, yet
    assert store.read("fresh/out/date=3/part-0.parquet") == b"new"
    store.remove_dir("out")
    store.remove_dir("out")  # removing what's gone is fine
    assert store.list_files("out") == [] and store.list_files("fresh") == ["fresh/out/date=3/part-0.parquet"]
    with pytest.raises(ValueError):
        store.remove_dir("")


def test_paths_cannot_escape_the_root(store):
    with pytest.raises(ValueError):
        store.write_atomic("../outside", b"x")


def test_hdfs_write_goes_through_temp_and_rename(tmp_path):
    with FakeWebHDFS(tmp_path / "nn") as fake:
        store = HdfsStorage(f"hdfs://127.0.0.1:{fake.port}/root")
        store.write_atomic("x/y.gz", b"1")
        store.write_atomic("x/y.gz", b"2")
        ops = [op for _m, op in fake.requests]
        # Second write: temp file (namenode, then datanode), delete old target, rename (HDFS
        # rename won't overwrite).
        assert ops[-5:] == ["MKDIRS", "CREATE", "CREATE", "DELETE", "RENAME"]
        assert store.read("x/y.gz") == b"2"


def test_open_storage_rejects_unknown_schemes():
    with pytest.raises(ValueError, match="unsupported storage URL"):
        open_storage("s3://bucket/x")
