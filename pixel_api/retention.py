"""Retain-until-landed: delivered events are kept until the lander has committed past them.

With a replicated Kafka, acks=all already makes a delivered event durable. The embedded broker
keeps its log in memory, so an event it acknowledged can still vanish if it dies before the
lander wrote the event to disk. We keep each delivered event (bounded) until the lander group's
committed offset passes it; if the topic id changes (the broker came back with a new, empty
log) everything still retained is sent again. Only the hand-off thread touches this object.
"""

from __future__ import annotations

import time
from collections import deque

from pixel_api import metrics


class Retention:
    def __init__(self, max_events: int):
        self.max_events = max_events
        self._by_tp: dict[tuple[str, int], deque] = {}  # (topic, partition) -> (offset, seq, key, value)
        self._count = 0
        self._seq = 0
        self._oldest_ns = 0

    def __len__(self) -> int:
        return self._count

    def add(self, topic: str, partition: int, offset: int, key: bytes, value: bytes) -> None:
        if self._count == 0:
            self._oldest_ns = time.time_ns()
        self._by_tp.setdefault((topic, partition), deque()).append((offset, self._seq, key, value))
        self._seq += 1
        self._count += 1
        if self._count > self.max_events:
            self._evict_oldest()

    def confirm(self, committed: dict[tuple[str, int], int]) -> int:
        """Drop everything below each partition's committed offset; returns how many."""
        dropped = 0
        for tp, next_offset in committed.items():
            q = self._by_tp.get(tp)
            while q and q[0][0] < next_offset:
                q.popleft()
                dropped += 1
        self._count -= dropped
        return dropped

    def take_topic(self, topic: str) -> tuple[list[tuple[str, bytes, bytes]], int]:
        """Remove and return all retained events of a topic, in delivery order, with the
        wall-clock time of the oldest one (to order the resend before later spool segments)."""
        items = []
        for (t, _p), q in list(self._by_tp.items()):
            if t == topic:
                items.extend(q)
                self._count -= len(q)
                del self._by_tp[(t, _p)]
        items.sort(key=lambda item: item[1])
        return [(topic, key, value) for _o, _s, key, value in items], self._oldest_ns

    def _evict_oldest(self) -> None:
        q = min((q for q in self._by_tp.values() if q), key=lambda q: q[0][1])
        q.popleft()
        self._count -= 1
        metrics.EVICTED.inc()
