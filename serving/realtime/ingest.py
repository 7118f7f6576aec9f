"""Kafka pixel.agg -> real-time store (the role of Druid's Kafka indexing service, embedded).

Reads committed transactions only (the speed layer writes exactly-once). Positions come from
the store, written with the data, so a restart resumes exactly where the store left off. A
partition held back by a transaction left open is logged and exported (serving.realtime.held_back).
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
from serving.realtime.held_back import STUCK_AFTER_S, HeldBack

log = logging.getLogger(__name__)


class AggIngestor:
    def __init__(
        self,
        settings: Settings,
        store: DuckDBStore,
        clients: KafkaClients | None = None,
        stuck_after_s: float = STUCK_AFTER_S,
        stats_interval_ms: int = 5000,
    ):
        self.settings = settings
        self.clients = clients_for(settings, clients)
        self.store = store
        self.topic = settings.agg_topic
        self.stop_event = threading.Event()
        self.ingested = 0
        self.skipped = 0
        self.held_back = HeldBack(stuck_after_s)
        self.stats_interval_ms = stats_interval_ms
        self._warned: set[tuple[int, int]] = set()  # (partition, LSO) already logged

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
                # Each partition's last stable offset and high watermark (see _on_stats).
                "statistics.interval.ms": self.stats_interval_ms,
                "stats_cb": self._on_stats,
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

    def _on_stats(self, report: str) -> None:
        """librdkafka's statistics (served inside consume()): warn once per partition and offset
        that a transaction holds back."""
        self.held_back.observe_stats(orjson.loads(report), self.topic)
        for partition, (stable, seconds) in self.held_back.stuck().items():
            if (partition, stable) not in self._warned:
                self._warned.add((partition, stable))
                log.warning(
                    "%s[%d]: no row after offset %d is readable for %.0f s: a transaction of the speed layer "
                    "is still open there (its job stalled, or the broker did not apply a commit); the real-time "
                    "view of its sites stops there until it is committed or the broker aborts it",
                    self.topic,
                    partition,
                    stable,
                    seconds,
                )

    def held_back_seconds(self) -> float:
        """The longest any partition has been held back at one offset (0: none)."""
        return max(self.held_back.seconds().values(), default=0.0)

    def stop(self) -> None:
        self.stop_event.set()
