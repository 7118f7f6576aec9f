"""Hot-path tallies. Request handlers bump plain ints and append latencies (prometheus_client's
locks cost microseconds per call); the hand-off thread folds them into Prometheus."""

from __future__ import annotations

from pixel_api import metrics


class HitTallies:
    def __init__(self):
        self.hits: dict[str, int] = {"gif": 0, "collect": 0, "api_event": 0}
        self.latencies: list[float] = []

    def fold(self) -> None:
        for route, n in self.hits.items():
            if n:
                self.hits[route] -= n
                metrics.HITS.labels(route).inc(n)
        if self.latencies:
            latencies, self.latencies = self.latencies, []
            for value in latencies:
                metrics.LATENCY.observe(value)
