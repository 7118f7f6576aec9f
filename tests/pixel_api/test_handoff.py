"""The hand-off's state machine (direct, spooling, replay, re-send after a lost log) over the
in-memory Kafka (core.kafka.testing): fast and deterministic. The real-broker tests
(tests/e2e/test_collect_and_land.py) run the same paths against tansu."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from core.kafka.clients import ConfluentClients, ensure_topics
from core.kafka.testing import InMemoryKafka
from core.settings import Settings
from pixel_api import handoff as handoff_module
from pixel_api import landing_monitor
from pixel_api.collector import Collector
from pixel_api.handoff import HandOff
from tests.harness import wait_until

pytestmark = pytest.mark.fast


@pytest.fixture
def kafka(tmp_path, monkeypatch):
    monkeypatch.setattr(handoff_module, "BROKER_PROBE_INTERVAL_S", 0.02)
    monkeypatch.setattr(landing_monitor, "CHECK_INTERVAL_S", 0.02)
    clients = InMemoryKafka()
    ensure_topics(settings_for(tmp_path), clients=clients)
    return clients


def settings_for(tmp_path, **overrides) -> Settings:
    return Settings(data_dir=tmp_path / "data", raw_partitions=3, **overrides)


def values(n: int, start: int = 0) -> list[bytes]:
    return [b'{"event_id":"e%d"}' % i for i in range(start, start + n)]


def submit(handoff: HandOff, batch: list[bytes], topic: str = "pixel.raw") -> None:
    for value in batch:
        handoff.submit(topic, b"site-%d" % (hash(value) % 5), value)


def landed(kafka: InMemoryKafka, topic: str = "pixel.raw") -> list[bytes]:
    return kafka.broker.values(topic)


def commit_everything(kafka: InMemoryKafka, group: str = "pixel-lander") -> None:
    """What the lander does once it has landed every message: commit past it."""
    consumer = kafka.consumer({"group.id": group})
    offsets = {(t, p): len(log) for t, topic in kafka.broker.topics.items() for p, log in enumerate(topic.partitions)}
    from confluent_kafka import TopicPartition

    consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False)


@contextmanager
def running(handoff: HandOff):
    handoff.start()
    try:
        yield handoff
    finally:
        handoff.stop(wait_landed_s=0)


def test_building_the_collector_does_no_network_work(tmp_path):
    settings = settings_for(tmp_path, kafka_bootstrap="127.0.0.1:9")  # nothing listens there
    collector = Collector(settings, ConfluentClients(settings))
    assert not collector.handoff.delivery.producer.started and not collector.handoff.admin.started
    assert not collector.ticker.producer


def test_direct_delivery_keeps_every_event_once_and_retains_it_until_landed(tmp_path, kafka):
    with running(HandOff(settings_for(tmp_path), kafka)) as handoff:
        submit(handoff, values(500))
        assert handoff.wait_idle(5)
        assert sorted(landed(kafka)) == sorted(values(500)) and not handoff.spooling
        assert len(handoff.retention) == 500
        commit_everything(kafka)
        wait_until(lambda: len(handoff.retention) == 0, 5, message="retention confirmed by the lander's commits")


def test_broker_down_spools_then_replays_in_order_without_loss_or_copies(tmp_path, kafka):
    with running(HandOff(settings_for(tmp_path), kafka)) as handoff:
        submit(handoff, values(100))
        assert handoff.wait_idle(5)
        kafka.broker.stop()
        submit(handoff, values(300, start=100))
        wait_until(lambda: handoff.spooling and handoff.spool.pending_bytes() > 0, 5, message="spooling")
        assert handoff.wait_idle(5)
        assert len(landed(kafka)) == 100  # nothing reached the broker while it was down
        kafka.broker.start()
        wait_until(lambda: not handoff.spooling, 10, message="spool replayed")
        assert handoff.wait_idle(5)
        got = landed(kafka)
        assert sorted(got) == sorted(values(400)) and len(got) == len(set(got))
        # Within a partition the spooled events kept the order they were submitted in.
        for partition in kafka.broker.topics["pixel.raw"].partitions:
            ids = [int(m.value()[14:-2]) for m in partition if int(m.value()[14:-2]) >= 100]
            assert ids == sorted(ids)
        commit_everything(kafka)
        wait_until(lambda: len(handoff.retention) == 0, 5, message="replayed events confirmed")


def test_unlanded_events_are_sent_again_when_the_broker_lost_its_log(tmp_path, kafka):
    with running(HandOff(settings_for(tmp_path), kafka)) as handoff:
        submit(handoff, values(200))
        assert handoff.wait_idle(5)
        commit_everything(kafka)  # the lander landed the first 200 ...
        wait_until(lambda: len(handoff.retention) == 0, 5, message="first 200 confirmed")
        submit(handoff, values(50, start=200))  # ... but not these before the broker died
        assert handoff.wait_idle(5)
        kafka.broker.restart_empty()
        wait_until(
            lambda: sorted(landed(kafka)) == sorted(values(50, start=200)),
            10,
            message="the 50 unlanded events re-sent to the new log",
        )
        assert handoff.wait_idle(5)
        assert sorted(landed(kafka)) == sorted(values(50, start=200))
        commit_everything(kafka)
        wait_until(lambda: len(handoff.retention) == 0, 5, message="re-sent events confirmed")


def test_a_full_producer_queue_spools_the_overflow(tmp_path, kafka):
    handoff = HandOff(settings_for(tmp_path, producer_queue_max_messages=10, retain_until_landed=False), kafka)
    kafka.broker.stop()  # nothing leaves the queue: the 11th event can't be queued
    handoff._step()
    submit(handoff, values(50))
    handoff._step()
    assert handoff.spooling and handoff.delivery.pending() == 10 and handoff.spool.pending_bytes() > 0
    kafka.broker.start()
    handoff.start()
    try:
        wait_until(lambda: not handoff.spooling, 10, message="spool replayed")
        assert handoff.wait_idle(5)
        assert sorted(landed(kafka)) == sorted(values(50))
    finally:
        handoff.stop(wait_landed_s=0)


def test_stopping_with_the_broker_down_spools_what_the_producer_held(tmp_path, kafka):
    settings = settings_for(tmp_path, retain_until_landed=False)
    handoff = HandOff(settings, kafka)
    handoff.start()
    kafka.broker.stop()
    submit(handoff, values(20))
    handoff.stop(wait_landed_s=0)
    from pixel_api.spool import Spool

    assert sorted(value for _t, _k, value in Spool.iter_all(settings.spool_dir)) == sorted(values(20))
    assert not landed(kafka)
