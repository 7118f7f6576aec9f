"""Polls the lander group's committed offsets and the topic ids, for retain-until-landed.

Both are blocking broker calls, so they run on this thread, never on the hand-off thread; each
result is queued as a report ``(topic ids, {(topic, partition): committed offset})`` for the
hand-off thread to apply. Offsets are only reported when the topic ids were the same before and
after reading them: a broker restart in between would make them offsets of an unknown generation.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from confluent_kafka import TopicPartition

from core.kafka.clients import KafkaClients, topic_ids
from core.settings import Settings

CHECK_INTERVAL_S = 1.0


class LandingMonitor:
    def __init__(
        self, settings: Settings, clients: KafkaClients, stopping: threading.Event, keep_confirming: Callable[[], bool]
    ):
        """Polls every CHECK_INTERVAL_S until ``stopping`` is set; then faster, while
        ``keep_confirming()`` (something still awaits landing, and there is time left)."""
        self.settings = settings
        self.clients = clients
        self.stopping = stopping
        self.keep_confirming = keep_confirming
        self.topics = [settings.raw_topic, settings.bad_topic]
        self.reports: deque[tuple[dict[str, str], dict[tuple[str, int], int]]] = deque()
        self._thread = threading.Thread(target=self._run, name="pixel-landing", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def poll_once(self, admin, group) -> bool:
        """Read the ids and the committed offsets once and queue a report; False if the broker
        did not answer or restarted while being read."""
        try:
            ids = topic_ids(admin, self.topics, timeout=2.0)
            metadata = admin.list_topics(timeout=2.0)
            partitions = [TopicPartition(t, p) for t in self.topics for p in metadata.topics[t].partitions]
            committed = group.committed(partitions, timeout=2.0)
            if topic_ids(admin, self.topics, timeout=2.0) != ids:
                return False
        except Exception:
            return False  # broker down: nothing can be confirmed now
        self.reports.append((ids, {(tp.topic, tp.partition): tp.offset for tp in committed if tp.offset >= 0}))
        return True

    def _run(self) -> None:
        s = self.settings
        admin = self.clients.admin()
        group = self.clients.consumer({"group.id": s.lander_group, "enable.auto.commit": False})
        try:
            while True:
                if not self.stopping.is_set():
                    self.stopping.wait(CHECK_INTERVAL_S)
                elif not self.keep_confirming():
                    return
                else:
                    time.sleep(0.2)
                self.poll_once(admin, group)
        finally:
            group.close()
