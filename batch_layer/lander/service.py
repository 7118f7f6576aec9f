"""The raw lander: a consumer group on pixel.raw (and the bad-rows topic) that writes the
immutable raw dataset. Per partition: buffer, write files (temp + fsync + rename), save the
position, then commit to Kafka. See lander_state for why positions live in the raw store.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

from batch_layer.lander.landing import Message, land_batch
from batch_layer.lander.position import PartitionState, load_state, save_state
from core.kafka.clients import KafkaClients, clients_for, ensure_topics, topic_ids
from core.kafka.config import CONSUMER_GROUP_TIMEOUTS
from core.lake.storage import Storage, open_storage
from core.settings import Settings
from events.badrows import encode_bad_row

log = logging.getLogger(__name__)

TOPIC_ID_CHECK_S = 2.0


def start_offset(state: PartitionState) -> int:
    """Where to consume from: an interrupted batch's first offset, else the next one to land."""
    start = state.intent[0] if state.intent else state.next
    return start if start is not None else OFFSET_BEGINNING


@dataclass
class PartitionBuffer:
    state: PartitionState
    messages: list[Message] = field(default_factory=list)
    first_seen: float = 0.0


@dataclass
class LanderStats:
    events: int = 0
    files: int = 0
    bad_rows: int = 0
    generations: int = 0


class Lander:
    def __init__(self, settings: Settings, store: Storage | None = None, clients: KafkaClients | None = None):
        self.settings = settings
        self.clients = clients_for(settings, clients)
        self.store = store or open_storage(settings.storage_root, settings.hdfs_user)
        self.topics = [settings.raw_topic, settings.bad_topic]
        self.admin = self.clients.admin()
        self.stats = LanderStats()
        self.stop_event = threading.Event()
        self.buffers: dict[tuple[str, int], PartitionBuffer] = {}
        self.topic_ids: dict[str, str] = {}
        self.suspect = False  # connection lost: the broker may come back with a new log
        self.bad_producer = self._new_bad_producer()
        self.consumer = None

    def _new_bad_producer(self):
        return self.clients.producer({"enable.idempotence": True, "acks": "all", "linger.ms": 5})

    # --- consumer group wiring -----------------------------------------------------------------
    def _new_consumer(self):
        consumer = self.clients.consumer(
            {
                **CONSUMER_GROUP_TIMEOUTS,
                "group.id": self.settings.lander_group,
                "enable.auto.commit": False,
                # Positions always come from our state; never let the client jump silently.
                "auto.offset.reset": "error",
                "error_cb": self._on_error,
            }
        )
        consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        return consumer

    def _on_error(self, err: KafkaError) -> None:
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            if not self.suspect:
                log.warning("lost the broker (%s); pausing until it's back", err.str())
            self.suspect = True

    def _on_assign(self, consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            state = load_state(self.store, tp.topic, tp.partition, self.topic_ids[tp.topic])
            self.buffers[(tp.topic, tp.partition)] = PartitionBuffer(state)
            tp.offset = start_offset(state)
            if state.intent:
                log.info("%s[%d]: completing interrupted batch %s", tp.topic, tp.partition, state.intent)
        consumer.assign(partitions)
        log.info("assigned %s", ", ".join(f"{tp.topic}[{tp.partition}]@{tp.offset}" for tp in partitions))

    def _on_revoke(self, consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            key = (tp.topic, tp.partition)
            if key in self.buffers:
                self._flush(key, final=True)
                del self.buffers[key]
        consumer.unassign()

    # --- main loop -----------------------------------------------------------------------------
    def run(self) -> None:
        ensure_topics(self.settings, clients=self.clients)
        self.topic_ids = topic_ids(self.admin, self.topics)
        self.consumer = self._new_consumer()
        last_check = time.monotonic()
        last_report = time.monotonic()
        try:
            while not self.stop_event.is_set():
                if self.suspect or time.monotonic() - last_check > TOPIC_ID_CHECK_S:
                    last_check = time.monotonic()
                    if not self._check_generation():
                        time.sleep(0.2)
                        continue
                for msg in self.consumer.consume(num_messages=5000, timeout=0.2):
                    if msg.error():
                        if msg.error().code() != KafkaError._PARTITION_EOF:
                            log.warning("consume error: %s", msg.error())
                            self.suspect = True
                        continue
                    buf = self.buffers.get((msg.topic(), msg.partition()))
                    if buf is None:
                        continue  # revoked meanwhile
                    if not buf.messages:
                        buf.first_seen = time.monotonic()
                    buf.messages.append(Message(msg.offset(), msg.value(), msg.timestamp()[1]))
                self._flush_due()
                if time.monotonic() - last_report > 30:
                    last_report = time.monotonic()
                    log.info(
                        "landed %d events in %d files; %d bad rows",
                        self.stats.events,
                        self.stats.files,
                        self.stats.bad_rows,
                    )
            self._check_generation()  # never flush under a generation that's gone
            for key in list(self.buffers):
                self._flush(key, final=True)
        finally:
            self.consumer.close()
            self.bad_producer.flush(5)

    def stop(self) -> None:
        self.stop_event.set()

    def _check_generation(self) -> bool:
        """True when the broker answers with the topic ids we land under. If a topic was
        re-created, buffered messages are dropped (they were never committed, so their
        producers re-send them) and every assigned partition restarts from its state under the
        new generation. The consumer itself is kept: a new one would wait for the dead member
        of the old one to time out of the group."""
        try:
            ids = topic_ids(self.admin, self.topics, timeout=2.0)
        except Exception:
            return False
        self.suspect = False
        if ids == self.topic_ids:
            return True
        log.warning(
            "topic ids changed %s -> %s: the broker lost its log; starting a new offset generation", self.topic_ids, ids
        )
        self.stats.generations += 1
        self.topic_ids = ids
        for (topic, partition), _old in list(self.buffers.items()):
            state = load_state(self.store, topic, partition, ids[topic])
            self.buffers[(topic, partition)] = PartitionBuffer(state)
            try:
                self.consumer.seek(TopicPartition(topic, partition, start_offset(state)))
            except Exception as exc:  # not fetching yet: the coming rebalance positions it
                log.debug("seek %s[%d] deferred: %s", topic, partition, exc)
        # The old producer's idempotence id died with the old log; it would retry forever.
        self.bad_producer.purge()
        self.bad_producer = self._new_bad_producer()
        return True

    def _flush_due(self) -> None:
        now = time.monotonic()
        s = self.settings
        for key, buf in list(self.buffers.items()):
            if not buf.messages:
                continue
            if buf.state.intent:  # an interrupted batch: land exactly its offsets, no more
                if buf.messages[-1].offset >= buf.state.intent[1]:
                    self._flush(key, final=False)
            elif len(buf.messages) >= s.lander_flush_events or now - buf.first_seen >= s.lander_flush_seconds:
                self._flush(key, final=False)

    def _flush(self, key: tuple[str, int], final: bool) -> None:
        buf = self.buffers[key]
        topic, partition = key
        state = buf.state
        messages = buf.messages
        if not messages:
            return
        if state.intent:
            if messages[-1].offset < state.intent[1]:
                return  # can't complete the interrupted batch yet; it stays as it is on disk
            messages = [m for m in messages if m.offset <= state.intent[1]]
        if not final and not self._same_generation(topic):
            return
        first, last = messages[0].offset, messages[-1].offset
        batch = land_batch(
            messages,
            partition=partition,
            offset_base=state.base,
            is_raw_topic=topic == self.settings.raw_topic,
            topic=topic,
            now_ms=int(time.time() * 1000),
        )
        state.intent = [first, last]
        save_state(self.store, topic, partition, state)
        for path, data in batch.files.items():
            self.store.write_atomic(path, data)
        for row in batch.bad_rows:
            self.bad_producer.produce(self.settings.bad_topic, encode_bad_row(row))
        if batch.bad_rows and self.bad_producer.flush(10) > 0:
            # Bad rows not confirmed: keep the buffer and the intent; the next flush (or a
            # restart) lands exactly this batch again, rewriting the same files.
            log.error("bad rows for %s[%d] not delivered; batch will be retried", topic, partition)
            return
        state.intent = None
        state.next = last + 1
        save_state(self.store, topic, partition, state)
        buf.messages = buf.messages[len(messages) :]
        buf.first_seen = time.monotonic()
        self.stats.events += batch.events
        self.stats.files += len(batch.files)
        self.stats.bad_rows += len(batch.bad_rows)
        try:
            self.consumer.commit(offsets=[TopicPartition(topic, partition, last + 1)], asynchronous=True)
        except Exception as exc:  # position is already durable in the store; commit is advisory
            log.debug("commit failed: %s", exc)

    def _same_generation(self, topic: str) -> bool:
        try:
            return topic_ids(self.admin, [topic], timeout=2.0)[topic] == self.topic_ids[topic]
        except Exception:
            self.suspect = True
            return False


def serve_metrics(lander: Lander, port: int, host: str = "0.0.0.0") -> None:
    """Prometheus text on http://host:port/ with the lander's running totals (a daemon thread)."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    class StatsCollector:
        def collect(self):
            stats = lander.stats
            yield CounterMetricFamily("pixel_lander_events", "Events landed in the raw store", value=stats.events)
            yield CounterMetricFamily("pixel_lander_files", "Raw files written", value=stats.files)
            yield CounterMetricFamily("pixel_lander_bad_rows", "Bad rows landed (badraw/)", value=stats.bad_rows)
            yield CounterMetricFamily(
                "pixel_lander_generations", "Topic re-creations detected", value=stats.generations
            )
            # Read from the landing thread's buffers without a lock: a snapshot off by one flush at most.
            buffers = list(lander.buffers.values())
            waiting = [b.first_seen for b in buffers if b.messages]
            yield GaugeMetricFamily(
                "pixel_lander_buffered_events",
                "Events consumed, not yet landed",
                value=sum(len(b.messages) for b in buffers),
            )
            yield GaugeMetricFamily(
                "pixel_lander_oldest_unlanded_seconds",
                "Age of the oldest event consumed and not yet landed (0: none waiting)",
                value=time.monotonic() - min(waiting) if waiting else 0,
            )

    registry = CollectorRegistry()
    registry.register(StatsCollector())
    start_http_server(port, addr=host, registry=registry)
