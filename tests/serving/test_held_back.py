"""A speed-layer transaction left open on pixel.agg is told apart from the one in flight, logged
and exported; on a real tansu with real transactional producers."""

from __future__ import annotations

import logging
import threading

import orjson
import pytest
from confluent_kafka import Producer

from events.aggregate import AGG_SCHEMA
from serving.realtime.duckdb_store import DuckDBStore
from serving.realtime.held_back import HeldBack
from serving.realtime.ingest import AggIngestor
from tests.harness import wait_until


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_only_an_offset_that_stays_put_counts_as_held_back():
    clock = Clock()
    held = HeldBack(stuck_after_s=60, clock=clock)
    held.observe(0, 10, 15)  # a transaction in flight: rows 10..14 not readable yet
    clock.now = 59
    assert held.stuck() == {}
    held.observe(0, 16, 20)  # committed; the next one is in flight: a new offset, a new clock
    clock.now = 100
    assert held.stuck() == {}
    assert held.seconds() == {0: 41}
    held.observe(0, 20, 20)  # everything readable
    held.observe(1, 5, 9)
    clock.now = 161
    assert held.stuck() == {1: (5, 61)}
    held.observe(1, -1001, 9)  # not known (yet): not reported
    assert held.seconds() == {}


def row(site: str, partition: int) -> bytes:
    values = {"string": "", "long": 1, "boolean": False}
    r = {name: values[typ] for name, typ in AGG_SCHEMA}
    r.update(site=site, window_start=1_795_507_200_000 + partition, window_end=1_795_507_201_000)
    return orjson.dumps(r)


@pytest.mark.slow
def test_an_open_transaction_is_reported_and_its_rows_come_once_committed(settings, broker, caplog):
    def transactional(tid: str) -> Producer:
        p = Producer({"bootstrap.servers": settings.kafka_bootstrap, "transactional.id": tid})
        p.init_transactions(10)
        p.begin_transaction()
        return p

    done = transactional("done")  # committed: its marker must not look like a held-back row
    for _ in range(3):
        done.produce(settings.agg_topic, row("a.example", 0), b"a.example", partition=0)
    done.commit_transaction(10)
    open_ = transactional("open")
    for _ in range(5):
        open_.produce(settings.agg_topic, row("b.example", 1), b"b.example", partition=1)
    assert open_.flush(10) == 0

    store = DuckDBStore()
    ingestor = AggIngestor(settings, store, stuck_after_s=2, stats_interval_ms=200)
    thread = threading.Thread(target=ingestor.run, daemon=True)
    caplog.set_level(logging.WARNING, logger="serving.realtime.ingest")
    thread.start()
    try:
        wait_until(lambda: ingestor.ingested == 3, 30, message="the committed rows")
        wait_until(lambda: ingestor.held_back.stuck(), 30, message="the open transaction reported")
        assert set(ingestor.held_back.stuck()) == {1}  # partition 0's commit marker is no open row
        assert ingestor.held_back_seconds() >= 2
        warnings = [r.getMessage() for r in caplog.records if "still open" in r.getMessage()]
        assert len(warnings) == 1 and f"{settings.agg_topic}[1]: no row after offset 0" in warnings[0]

        open_.commit_transaction(10)
        wait_until(lambda: ingestor.ingested == 8, 30, message="the rows of the transaction, once committed")
        wait_until(lambda: ingestor.held_back_seconds() == 0, 30, message="nothing held back any more")
    finally:
        ingestor.stop()
        thread.join(10)
