"""The collector's event-time ticks against a real tansu broker."""

from __future__ import annotations

import time

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from core.kafka.clients import ensure_topics
from core.kafka.config import client_config
from events.raw import is_tick
from pixel_api.ticker import Ticker

pytestmark = pytest.mark.fast


def test_one_tick_per_partition_stamped_with_the_given_time(settings, broker):
    ensure_topics(settings)
    ticker = Ticker(settings)
    assert ticker.tick(1_795_507_200_000) == settings.raw_partitions
    assert ticker.producer.flush(10) == 0
    c = Consumer({**client_config(settings), "group.id": f"t{time.time()}", "enable.auto.commit": False})
    c.assign([TopicPartition(settings.raw_topic, p, 0) for p in range(settings.raw_partitions)])
    got = {}
    deadline = time.time() + 20
    while len(got) < settings.raw_partitions and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            assert is_tick(m.value())
            got[m.partition()] = orjson.loads(m.value())["ts"]
    c.close()
    assert got == {p: 1_795_507_200_000 for p in range(settings.raw_partitions)}


def test_ticks_off_when_the_interval_is_zero(settings):
    settings.collector_tick_seconds = 0
    ticker = Ticker(settings)
    ticker.start()
    time.sleep(0.1)
    assert not ticker._thread.is_alive() and ticker.producer is None
    ticker.stop()
