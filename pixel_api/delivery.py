"""The hand-off's producer: queues events for Kafka, delivers a replay chunk synchronously, and is
replaced when the broker lost its log. Used by the hand-off thread only.

Whatever the producer can't deliver comes back through ``on_failed`` (the hand-off spools it),
and every delivered event through ``on_delivered`` (retain-until-landed); nothing a producer
held is dropped, not even when it is replaced or the collector stops.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException

from core.kafka.clients import KafkaClients
from core.settings import Settings
from pixel_api import metrics
from pixel_api.spool import Record

log = logging.getLogger(__name__)

REPLAY_DEADLINE_S = 15.0


def producer_config(settings: Settings) -> dict:
    """The collector's producer settings (librdkafka's names), without its callbacks."""
    return {
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "lz4",
        "linger.ms": settings.producer_linger_ms,
        "queue.buffering.max.messages": settings.producer_queue_max_messages,
        # After this, an undelivered event is handed back to us and spooled.
        "message.timeout.ms": 10_000,
        "reconnect.backoff.max.ms": 1000,
    }


class Delivery:
    def __init__(
        self,
        settings: Settings,
        clients: KafkaClients,
        on_delivered: Callable[[object, bytes], None],
        on_failed: Callable[[Record], None],
        on_error: Callable[[KafkaError], None],
    ):
        self.settings = settings
        self.clients = clients
        self.on_delivered = on_delivered
        self.on_failed = on_failed
        self.on_error = on_error
        self.producer = self._new_producer()

    def _new_producer(self):
        return self.clients.producer(
            {**producer_config(self.settings), "on_delivery": self._report, "error_cb": self.on_error}
        )

    def _report(self, err: KafkaError | None, msg) -> None:
        if err is None:
            self.on_delivered(msg, msg.value())
        else:
            metrics.PRODUCE_ERRORS.inc()
            self.on_failed((msg.topic(), msg.key() or b"", msg.value()))

    def produce(self, batch: list[Record]) -> list[Record]:
        """Queue a batch; returns the records from the first one the producer refused on (its
        queue is full, or it failed), to be spooled in order."""
        produce = self.producer.produce  # bound once: the producer is a lazy proxy
        for i, (topic, key, value) in enumerate(batch):
            try:
                produce(topic, value, key)
            except BufferError:
                log.warning("producer queue full; spooling to disk")
                return batch[i:]
            except KafkaException as exc:
                log.error("produce failed (%s); spooling to disk", exc)
                return batch[i:]
        return []

    def poll(self, timeout: float) -> None:
        self.producer.poll(timeout)

    def pending(self) -> int:
        """Events the producer still holds (queued, in flight, or reports not yet served)."""
        return len(self.producer)

    def broker_answers(self) -> bool:
        try:
            md = self.producer.list_topics(self.settings.raw_topic, timeout=1.0)
            topic = md.topics.get(self.settings.raw_topic)
            return bool(topic and topic.partitions)
        except KafkaException:
            return False

    def deliver_now(self, records: list[Record]) -> bool:
        """Deliver records and wait for every report (a replay chunk); False if any failed or the
        deadline passed. Some may have been delivered then: they are sent again with the chunk
        (same event_id, so the batch layer dedupes them)."""
        failed = []
        pending = [len(records)]

        def done(err, msg):
            pending[0] -= 1
            if err is not None:
                failed.append(err)
            else:
                self._report(None, msg)

        for topic, key, value in records:
            while True:
                try:
                    self.producer.produce(topic, value, key, on_delivery=done)
                    break
                except BufferError:
                    self.producer.poll(0.05)
        deadline = time.monotonic() + REPLAY_DEADLINE_S
        while pending[0] > 0 and time.monotonic() < deadline:
            self.producer.poll(0.05)
        if failed or pending[0]:
            log.warning("replay chunk not fully delivered (%s); will retry", failed[:1] or "timeout")
            return False
        return True

    def replace(self) -> None:
        """A broker that lost its log also lost our idempotent producer id, and the old producer
        would retry forever (UnknownProducerId). Start a new one; whatever the old one still held
        comes back through on_failed."""
        old, self.producer = self.producer, self._new_producer()
        self.hand_back(old)

    def hand_back(self, producer=None) -> None:
        """Purge a producer (this one by default) and serve the failed reports the purge makes, so
        everything it held goes to on_failed. Only poll() serves them: dropping a purged producer
        unserved would lose its events."""
        producer = producer if producer is not None else self.producer
        producer.purge()  # in-queue and in-flight
        deadline = time.monotonic() + 5.0
        while len(producer) and time.monotonic() < deadline:
            producer.poll(0.05)
        if len(producer):
            log.error("%d events still held by a purged producer", len(producer))
