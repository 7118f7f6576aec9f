"""Prometheus metrics of the collector.

The hot path never calls prometheus_client (its locks cost microseconds): it bumps plain ints and
appends latencies to a list, and the hand-off thread folds them into these metrics. With several
uvicorn workers, PROMETHEUS_MULTIPROC_DIR makes /metrics aggregate across processes.
"""

from __future__ import annotations

import os
from bisect import bisect_left

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

HITS = Counter("pixel_hits_total", "Pixel hits answered", ["route"])
BYTES = Counter("pixel_hit_bytes_total", "Bytes of raw events handed to Kafka")
BAD = Counter("pixel_bad_requests_total", "Requests turned into bad rows", ["reason"])
PRODUCED = Counter("pixel_produced_total", "Events acknowledged by the broker", ["topic"])
PRODUCE_ERRORS = Counter("pixel_produce_errors_total", "Failed deliveries (spooled for retry)")
SPOOLED = Counter("pixel_spooled_total", "Events written to the disk spool")
REPLAYED = Counter("pixel_replayed_total", "Spooled events delivered after the broker came back")
RESENT = Counter("pixel_resent_total", "Events re-sent because the broker lost its log")
EVICTED = Counter("pixel_retained_evicted_total", "Delivered events released unconfirmed (cap)")
SPOOL_BYTES = Gauge("pixel_spool_bytes", "Bytes in the spool awaiting replay", multiprocess_mode="max")
RETAINED = Gauge("pixel_retained_events", "Delivered events awaiting landing", multiprocess_mode="livesum")
BROKER_UP = Gauge("pixel_broker_up", "1 if the broker takes our events", multiprocess_mode="min")
LATENCY = Histogram(
    "pixel_hit_latency_seconds",
    "Time to build and hand off one hit (excludes the socket write)",
    buckets=(1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05),
)


def observe_many(histogram: Histogram, values: list[float]) -> None:
    """``histogram.observe(v)`` for each value, as one update per bucket: the per-value calls
    (a lock each, a file write each with several workers) cost ~2 us per hit. Reaches into
    prometheus_client's buckets (stable since 0.4); tests compare it with observe()."""
    bounds = histogram._upper_bounds  # ascending, the last +Inf
    counts = [0] * len(bounds)
    for value in values:
        counts[bisect_left(bounds, value)] += 1  # the first bound >= value, as observe() picks
    histogram._sum.inc(sum(values))
    for bucket, n in zip(histogram._buckets, counts):
        if n:
            bucket.inc(n)


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
