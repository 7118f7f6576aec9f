"""The hot path's tallies reach Prometheus as if every hit had been observed one by one."""

from __future__ import annotations

import random

from prometheus_client import REGISTRY, CollectorRegistry, Histogram, generate_latest

from pixel_api import metrics
from pixel_api.tallies import HitTallies


def histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram("h_seconds", "test", buckets=metrics.LATENCY._upper_bounds[:-1], registry=registry)


def test_observe_many_renders_what_observe_renders():
    rng = random.Random(7)
    # Values on the bounds themselves too: a value equal to a bound belongs to that bucket.
    values = [rng.choice([rng.expovariate(5000), *metrics.LATENCY._upper_bounds[:-1], 0.2, 0.0]) for _ in range(5000)]
    one_by_one, at_once = CollectorRegistry(), CollectorRegistry()
    single = histogram(one_by_one)
    for value in values:
        single.observe(value)
    metrics.observe_many(histogram(at_once), values)
    rendered = [
        [line for line in generate_latest(r).decode().splitlines() if "_created" not in line]
        for r in (one_by_one, at_once)
    ]
    assert rendered[0] == rendered[1]
    assert "h_seconds_count 5000.0" in rendered[1]


def _value(name: str, labels: dict) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_fold_moves_every_tally_into_prometheus_once():
    tallies = HitTallies()
    before = {
        "hits": _value("pixel_hits_total", {"route": "gif"}),
        "produced": _value("pixel_produced_total", {"topic": "t.raw"}),
        "bytes": _value("pixel_hit_bytes_total", {}),
        "latencies": _value("pixel_hit_latency_seconds_count", {}),
    }
    tallies.hits["gif"] += 3
    tallies.latencies += [1e-5, 2e-5, 3e-3]
    for size in (100, 200, 300):
        tallies.delivered("t.raw", size)
    tallies.fold()
    tallies.fold()  # nothing new: adds nothing
    assert _value("pixel_hits_total", {"route": "gif"}) - before["hits"] == 3
    assert _value("pixel_produced_total", {"topic": "t.raw"}) - before["produced"] == 3
    assert _value("pixel_hit_bytes_total", {}) - before["bytes"] == 600
    assert _value("pixel_hit_latency_seconds_count", {}) - before["latencies"] == 3
