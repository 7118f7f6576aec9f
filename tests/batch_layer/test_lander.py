"""The lander against a real tansu broker (in-process lander thread, real consumer group)."""

from __future__ import annotations

import threading
import time

import orjson
import pytest
from confluent_kafka import Producer

from batch_layer.lander.position import PartitionState, save_state
from batch_layer.lander.service import Lander
from core.kafka.clients import ConfluentClients, topic_ids
from core.lake.storage import FileStorage, open_storage
from tests.fakes.webhdfs import FakeWebHDFS
from tests.harness import read_landed, wait_until

pytestmark = pytest.mark.slow


def produce(settings, values, partition=0, topic=None):
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for v in values:
        p.produce(topic or settings.raw_topic, v, b"k", partition=partition)
    assert p.flush(10) == 0


def event(i):
    return orjson.dumps({"v": 1, "event_id": f"e{i}", "ts": int(time.time() * 1000), "site": "a.com"})


class Running:
    def __init__(self, lander: Lander):
        self.lander = lander
        self.thread = threading.Thread(target=lander.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self.lander

    def __exit__(self, *exc):
        self.lander.stop()
        self.thread.join(30)
        assert not self.thread.is_alive()


def test_interrupted_batch_is_relanded_under_the_same_names(settings, broker):
    produce(settings, [event(i) for i in range(100)])
    store = FileStorage(settings.data_dir)
    topic_id = topic_ids(ConfluentClients(settings).admin(), [settings.raw_topic])[settings.raw_topic]
    # A previous run landed offsets 0..9, announced batch [10, 59], wrote a stale file for it and
    # died before saving the position.
    save_state(store, settings.raw_topic, 0, PartitionState(topic_id, next=10, intent=[10, 59]))
    now = time.gmtime()
    stale = f"raw/date={time.strftime('%Y-%m-%d', now)}/hour={time.strftime('%H', now)}/0-10-59.jsonl.gz"
    store.write_atomic(stale, b"stale")
    with Running(Lander(settings, store)) as lander:
        wait_until(lambda: lander.stats.events >= 90, 30, message="90 events landed")
        time.sleep(1)
    events = read_landed(settings.data_dir)
    assert sorted(int(e["event_id"][1:]) for e in events) == list(range(10, 100))
    names = sorted(p.name for p in (settings.data_dir / "raw").rglob("*.gz"))
    assert "0-10-59.jsonl.gz" in names  # the interrupted batch, rewritten exactly
    assert all(not n.startswith("0-0-") for n in names)


def test_malformed_messages_become_bad_rows_and_landing_goes_on(settings, broker):
    produce(settings, [event(0), b"\x00\x01 not json", b'{"v":1,"ts":5}', b"[]", event(1)])
    with Running(Lander(settings)) as lander:
        wait_until(lambda: len(read_landed(settings.data_dir, "badraw")) >= 3, 30, message="bad rows landed")
        assert lander.stats.events >= 2
    assert sorted(e["event_id"] for e in read_landed(settings.data_dir)) == ["e0", "e1"]
    bad = read_landed(settings.data_dir, "badraw")
    assert sorted(b["reason"] for b in bad) == ["invalid_json", "missing_field", "not_an_object"]
    assert all(b["source"] == "lander" and b["topic"] == settings.raw_topic for b in bad)
    assert sorted(b["offset"] for b in bad) == [1, 2, 3]


def test_lands_into_hdfs_through_webhdfs(settings, broker, tmp_path):
    """hdfs:// end to end against FakeWebHDFS (a mock namenode; see tests/fakes/webhdfs.py)."""
    produce(settings, [event(i) for i in range(30)], partition=2)
    with FakeWebHDFS(tmp_path / "namenode") as fake:
        store = open_storage(f"hdfs://127.0.0.1:{fake.port}/pixel")
        with Running(Lander(settings, store)) as lander:
            wait_until(lambda: lander.stats.events >= 30, 30, message="30 events landed on hdfs")
        files = store.list_files("raw")
        assert len(files) == 1 and files[0].endswith("/2-0-29.jsonl.gz")
        assert sorted(e["event_id"] for e in read_landed(tmp_path / "namenode" / "pixel")) == sorted(
            f"e{i}" for i in range(30)
        )
        assert store.exists(f"_lander/{settings.raw_topic}/p2.json")


def test_metrics_count_what_was_landed(settings, broker):
    import httpx

    from batch_layer.lander.service import serve_metrics
    from tests.harness import free_port

    produce(settings, [event(i) for i in range(25)])
    port = free_port()
    with Running(Lander(settings, FileStorage(settings.data_dir))) as lander:
        serve_metrics(lander, port, host="127.0.0.1")
        wait_until(lambda: lander.stats.events >= 25, 30, message="25 events landed")
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert "pixel_lander_events_total 25.0" in text and "pixel_lander_bad_rows_total 0.0" in text
