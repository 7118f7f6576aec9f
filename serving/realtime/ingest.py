"""Kafka pixel.agg -> real-time store (the role of Druid's Kafka indexing service, embedded).

Reads committed transactions only (the speed layer writes exactly-once). Positions come from
the store, written with the data, so a restart resumes exactly where the store left off.
"""

from __future__ import annotations

import logging
import threading

import orjson
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from core.kafka.clients import KafkaClients, clients_for
from core.kafka.config import CONSUMER_GROUP_TIMEOUTS
from core.settings import Settings
from events.aggregate import AGG_COLUMNS
from serving.realtime.duckdb_store import DuckDBStore

log = logging.getLogger(__name__)


class AggIngestor:
    def __init__(self, settings: Settings, store: DuckDBStore, clients: KafkaClients | None = None):
        self.settings = settings
        self.clients = clients_for(settings, clients)
        self.store = store
        self.topic = settings.agg_topic
        self.stop_event = threading.Event()
        self.ingested = 0
        self.skipped = 0

    def _on_assign(self, consumer, partitions: list[TopicPartition]) -> None:
        stored = self.store.offsets(self.topic)
        for tp in partitions:
            tp.offset = stored.get(tp.partition, OFFSET_BEGINNING)
        consumer.assign(partitions)

    def run(self) -> None:
        consumer = self.clients.consumer(
            {
                **CONSUMER_GROUP_TIMEOUTS,
                "group.id": "pixel-realtime-store",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
            }
        )
        consumer.subscribe([self.topic], on_assign=self._on_assign)
        try:
            while not self.stop_event.is_set():
                batch = consumer.consume(num_messages=5000, timeout=0.5)
                rows, offsets = [], {}
                for msg in batch:
                    if msg.error():
                        continue
                    offsets[(self.topic, msg.partition())] = msg.offset() + 1
                    try:
                        row = orjson.loads(msg.value())
                        rows.append({c: row[c] for c in AGG_COLUMNS})
                    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                        self.skipped += 1  # not ours: our writer is the speed layer
                        log.warning(
                            "skipping malformed aggregate at %s[%d]@%d: %s",
                            self.topic,
                            msg.partition(),
                            msg.offset(),
                            exc,
                        )
                if offsets:
                    self.store.ingest(rows, offsets)
                    self.ingested += len(rows)
        finally:
            consumer.close()

    def stop(self) -> None:
        self.stop_event.set()
