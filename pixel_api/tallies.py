"""Tallies of the collector's per-event work: request handlers bump plain ints and append
latencies, the producer's delivery reports count per topic, and the hand-off thread folds them
all into Prometheus once per step. prometheus_client's calls cost microseconds each (a lock, and
a file write per update with several workers): per event they were a third of a hit's Python
work."""

from __future__ import annotations

from pixel_api import metrics


class HitTallies:
    def __init__(self):
        self.hits: dict[str, int] = {"gif": 0, "collect": 0, "api_event": 0}  # request handlers
        self.latencies: list[float] = []  # request handlers: seconds to build and hand off a hit
        self.produced: dict[str, int] = {}  # hand-off thread: topic -> events acknowledged
        self.produced_bytes = 0  # hand-off thread: their bytes

    def delivered(self, topic: str, size: int) -> None:
        self.produced[topic] = self.produced.get(topic, 0) + 1
        self.produced_bytes += size

    def fold(self) -> None:
        """Into Prometheus (on the hand-off thread, the only one that touches produced)."""
        for route, n in self.hits.items():
            if n:
                self.hits[route] -= n
                metrics.HITS.labels(route).inc(n)
        if self.latencies:
            latencies, self.latencies = self.latencies, []
            metrics.observe_many(metrics.LATENCY, latencies)
        if self.produced:
            for topic, n in self.produced.items():
                metrics.PRODUCED.labels(topic).inc(n)
            self.produced.clear()
        if self.produced_bytes:
            metrics.BYTES.inc(self.produced_bytes)
            self.produced_bytes = 0
