"""Event-time ticks (events.raw.tick_message) to every pixel.raw partition, once a tick interval.

A thread beside the hand-off with its own small producer: ticks are best-effort (a lost tick only
delays windows by one interval) and must never queue behind, or be spooled with, real events.
"""

from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import KafkaException

from core.kafka.clients import KafkaClients, clients_for
from core.settings import Settings
from events.raw import tick_message

log = logging.getLogger(__name__)

PARTITIONS_REFRESH_S = 30.0


class Ticker:
    def __init__(self, settings: Settings, clients: KafkaClients | None = None):
        self.settings = settings
        self.clients = clients_for(settings, clients)
        self.interval = settings.collector_tick_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pixel-ticker", daemon=True)
        self.producer = None
        self.partitions: list[int] = []
        self._partitions_at = float("-inf")

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def tick(self, now_ms: int) -> int:
        """Send one tick stamped now_ms to each partition; returns how many were queued."""
        if self.producer is None:
            self.producer = self.clients.producer(
                {"linger.ms": 0, "queue.buffering.max.messages": 10_000, "message.timeout.ms": 5_000}
            )
        if time.monotonic() - self._partitions_at > PARTITIONS_REFRESH_S or not self.partitions:
            self._refresh_partitions()
        queued = 0
        for partition in self.partitions:
            try:
                self.producer.produce(self.settings.raw_topic, tick_message(now_ms), partition=partition)
                queued += 1
            except (BufferError, KafkaException):
                break  # broker down or slow: the next interval tries again
        self.producer.poll(0)
        return queued

    def _refresh_partitions(self) -> None:
        try:
            md = self.producer.list_topics(self.settings.raw_topic, timeout=1.0)
            topic = md.topics.get(self.settings.raw_topic)
            if topic is not None and topic.error is None:
                self.partitions = sorted(topic.partitions)
                self._partitions_at = time.monotonic()
        except KafkaException as exc:
            log.debug("ticker: no partitions for %s yet: %s", self.settings.raw_topic, exc)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick(time.time_ns() // 1_000_000)
        if self.producer is not None:
            self.producer.flush(2)
