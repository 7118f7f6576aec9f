"""The Kafka client factories: the same scenario on the real broker (tansu) and on the in-memory
fake, so the fake the fast tests rely on behaves as the broker does where the platform looks."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from core.kafka.clients import ConfluentClients, ensure_topics, topic_ids
from core.kafka.config import topic_specs
from core.kafka.testing import InMemoryKafka
from core.settings import Settings


def scenario(settings: Settings, clients) -> dict:
    ensure_topics(settings, clients=clients)
    ensure_topics(settings, clients=clients)  # idempotent
    admin = clients.admin()
    ids = topic_ids(admin, [settings.raw_topic, settings.bad_topic])
    partitions = {name: len(admin.list_topics(timeout=5).topics[name].partitions) for name in topic_specs(settings)}
    reports = []
    producer = clients.producer(
        {
            "linger.ms": 0,
            "on_delivery": lambda err, msg: reports.append((err, msg.topic(), msg.partition(), msg.offset())),
        }
    )
    for i in range(10):
        producer.produce(settings.raw_topic, b"v%d" % i, partition=i % 2)
    assert producer.flush(10) == 0
    consumer = clients.consumer(
        {
            "group.id": "parity",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
            "auto.offset.reset": "earliest",
        }
    )
    assigned = []

    def on_assign(c, tps):
        assigned.extend((tp.topic, tp.partition) for tp in tps)
        for tp in tps:
            tp.offset = OFFSET_BEGINNING
        c.assign(tps)

    consumer.subscribe([settings.raw_topic], on_assign=on_assign)
    got, deadline = [], time.monotonic() + 30
    while len(got) < 10 and time.monotonic() < deadline:
        got += [m for m in consumer.consume(100, 0.2) if not m.error()]
    consumer.commit(offsets=[TopicPartition(settings.raw_topic, 0, 5)], asynchronous=False)
    committed = consumer.committed([TopicPartition(settings.raw_topic, 0), TopicPartition(settings.raw_topic, 1)], 5)
    consumer.close()
    return {
        "ids": sorted(ids) == [settings.bad_topic, settings.raw_topic] and all(ids.values()),
        "partitions": partitions,
        "reports": sorted((err is None, t, p, o) for err, t, p, o in reports),
        "assigned": sorted(assigned),
        "consumed": sorted((m.partition(), m.offset(), m.value()) for m in got),
        "committed": [(tp.partition, tp.offset) for tp in committed],
    }


def expected(settings: Settings) -> dict:
    return {
        "ids": True,
        "partitions": topic_specs(settings),
        "reports": sorted((True, settings.raw_topic, i % 2, i // 2) for i in range(10)),
        "assigned": [(settings.raw_topic, p) for p in range(settings.raw_partitions)],
        "consumed": sorted((i % 2, i // 2, b"v%d" % i) for i in range(10)),
        "committed": [(0, 5), (1, -1001)],
    }


@pytest.mark.fast
def test_the_in_memory_kafka(tmp_path):
    settings = Settings(data_dir=tmp_path, raw_partitions=3)
    assert scenario(settings, InMemoryKafka()) == expected(settings)


@pytest.mark.slow
def test_the_real_broker(settings, broker):
    assert scenario(settings, ConfluentClients(settings)) == expected(settings)


@pytest.mark.fast
def test_clients_connect_on_first_use_only():
    clients = ConfluentClients(Settings(kafka_bootstrap="127.0.0.1:9"))
    producer, consumer, admin = clients.producer(), clients.consumer({"group.id": "g"}), clients.admin()
    assert not (producer.started or consumer.started or admin.started) and len(producer) == 0
    producer.produce("t", b"x")  # now it exists (and queues locally: nothing listens there)
    assert producer.started and len(producer) >= 1  # the event, and librdkafka's own error reports
    producer.purge()
