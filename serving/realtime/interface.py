"""What the serving layer asks of a real-time store, whatever the engine.

Times are ms since epoch (UTC), ranges half-open [start, end). Every answer carries the merged
visitors sketch (base64 HLL) next to its estimate, so the serving layer can union it with the
batch views' sketches across the batch/speed seam.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from events.aggregate import DIMENSIONS
from events.sketches import estimate_and_merge


@dataclass(frozen=True)
class Count:
    pageviews: int  # events named pageview
    visitors: int
    visitors_hll: str
    events: int = 0  # every event


def sum_counts(counts: list[Count]) -> Count:
    """Counts of disjoint rows as one: sums, and the union of their sketches."""
    visitors, merged = estimate_and_merge(c.visitors_hll for c in counts)
    return Count(sum(c.pageviews for c in counts), visitors, merged, sum(c.events for c in counts))


@dataclass(frozen=True)
class Bucket:
    start: int
    count: Count


@dataclass(frozen=True)
class Ranked:
    value: str
    count: Count


BREAKDOWN_DIMENSIONS = tuple(d for d in DIMENSIONS if d != "total")
MINUTE = 60_000  # the stores' granularity (both roll up by minute)


class RealtimeStore(Protocol):
    def totals(self, site: str, start: int, end: int) -> Count: ...
    def timeseries(self, site: str, start: int, end: int, interval_ms: int) -> list[Bucket]: ...
    def top(self, site: str, dimension: str, start: int, end: int, limit: int = 10) -> list[Ranked]: ...
    def realtime_visitors(self, site: str, now_ms: int, minutes: int = 5) -> int: ...


def check_dimension(dimension: str) -> None:
    if dimension not in BREAKDOWN_DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r}; one of {', '.join(BREAKDOWN_DIMENSIONS)}")


def check_interval(interval_ms: int) -> None:
    if interval_ms < MINUTE or interval_ms % MINUTE:
        raise ValueError("interval must be a whole number of minutes (the store's granularity)")


def realtime_range(now_ms: int, minutes: int) -> tuple[int, int]:
    """[start, end) covering the current minute and the `minutes - 1` before it."""
    return now_ms // MINUTE * MINUTE - (minutes - 1) * MINUTE, now_ms + 1
