"""The lander's logic over the in-memory Kafka (core.kafka.testing): landing, positions, commits,
bad rows and a broker that lost its log, in milliseconds. tests/batch_layer/test_lander.py runs
the lander against a real broker (tansu)."""

from __future__ import annotations

import threading
import time

import orjson
import pytest

from batch_layer.lander import service
from batch_layer.lander.position import load_state
from batch_layer.lander.service import Lander
from core.kafka.clients import ensure_topics
from core.kafka.testing import InMemoryKafka
from core.lake.storage import FileStorage
from core.settings import Settings
from tests.harness import read_landed, wait_until

pytestmark = pytest.mark.fast


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setattr(service, "TOPIC_ID_CHECK_S", 0.05)
    settings = Settings(data_dir=tmp_path / "data", raw_partitions=2, lander_flush_seconds=0.05)
    kafka = InMemoryKafka()
    ensure_topics(settings, clients=kafka)
    return settings, kafka, FileStorage(settings.data_dir)


def event(i: int) -> bytes:
    return orjson.dumps({"v": 1, "event_id": f"e{i}", "ts": int(time.time() * 1000), "site": "a.com"})


def produce(kafka: InMemoryKafka, values: list[bytes], partition: int = 0, topic: str = "pixel.raw") -> None:
    producer = kafka.producer()
    for value in values:
        producer.produce(topic, value, b"k", partition=partition)
    assert producer.flush(1) == 0


class Running:
    def __init__(self, lander: Lander):
        self.lander = lander
        self.thread = threading.Thread(target=lander.run, daemon=True)

    def __enter__(self) -> Lander:
        self.thread.start()
        return self.lander

    def __exit__(self, *exc):
        self.lander.stop()
        self.thread.join(10)
        assert not self.thread.is_alive()


def test_lands_every_event_once_and_commits_past_it(setup):
    settings, kafka, store = setup
    produce(kafka, [event(i) for i in range(30)], partition=0)
    produce(kafka, [event(i) for i in range(30, 40)], partition=1)
    with Running(Lander(settings, store, kafka)) as lander:
        wait_until(lambda: lander.stats.events == 40, 5, interval=0.02, message="40 events landed")
    assert sorted(e["event_id"] for e in read_landed(settings.data_dir)) == sorted(f"e{i}" for i in range(40))
    assert sorted(p.split("/")[-1] for p in store.list_files("raw")) == ["0-0-29.jsonl.gz", "1-0-9.jsonl.gz"]
    topic_id = kafka.broker.topics["pixel.raw"].topic_id
    assert (
        load_state(store, "pixel.raw", 0, topic_id).next == 30
        and not load_state(store, "pixel.raw", 0, topic_id).intent
    )
    assert kafka.broker.committed["pixel-lander"][("pixel.raw", 0)] == 30
    assert kafka.broker.committed["pixel-lander"][("pixel.raw", 1)] == 10


def test_a_restart_resumes_from_the_stored_position(setup):
    settings, kafka, store = setup
    produce(kafka, [event(i) for i in range(10)])
    with Running(Lander(settings, store, kafka)) as lander:
        wait_until(lambda: lander.stats.events == 10, 5, interval=0.02, message="first 10 landed")
    produce(kafka, [event(i) for i in range(10, 15)])
    with Running(Lander(settings, store, kafka)) as lander:
        wait_until(lambda: lander.stats.events == 5, 5, interval=0.02, message="the next 5 landed")
    assert sorted(e["event_id"] for e in read_landed(settings.data_dir)) == sorted(f"e{i}" for i in range(15))


def test_bad_messages_become_bad_rows_on_the_bad_topic_and_are_landed(setup):
    settings, kafka, store = setup
    produce(kafka, [event(0), b"not json", b'{"v":1,"ts":5}', event(1)])
    with Running(Lander(settings, store, kafka)) as lander:
        wait_until(
            lambda: len(read_landed(settings.data_dir, "badraw")) == 2, 5, interval=0.02, message="two bad rows landed"
        )
        assert lander.stats.bad_rows == 2
    assert sorted(e["event_id"] for e in read_landed(settings.data_dir)) == ["e0", "e1"]
    assert sorted(b["reason"] for b in read_landed(settings.data_dir, "badraw")) == ["invalid_json", "missing_field"]


def test_a_broker_that_lost_its_log_starts_a_new_generation_of_file_names(setup):
    settings, kafka, store = setup
    produce(kafka, [event(i) for i in range(20)])
    with Running(Lander(settings, store, kafka)) as lander:
        wait_until(lambda: lander.stats.events == 20, 5, interval=0.02, message="first generation landed")
        kafka.broker.restart_empty()
        wait_until(lambda: lander.stats.generations == 1, 5, interval=0.02, message="new generation seen")
        produce(kafka, [event(i) for i in range(20, 25)])  # offsets 0..4 again, on the new log
        wait_until(lambda: lander.stats.events == 25, 5, interval=0.02, message="second generation landed")
    names = sorted(p.split("/")[-1] for p in store.list_files("raw"))
    assert names == ["0-0-19.jsonl.gz", "0-20-24.jsonl.gz"]  # logical offsets continue: no overwrite
    assert sorted(e["event_id"] for e in read_landed(settings.data_dir)) == sorted(f"e{i}" for i in range(25))
