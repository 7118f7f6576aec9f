"""A transaction left open on pixel.agg, told apart from the one in flight.

The speed layer commits a Kafka transaction with every checkpoint (about a second). A
read_committed reader stops at a partition's last stable offset (LSO): the first row of a
transaction still open. If one stays open (a job that stalled, a commit the broker did not
apply), the real-time view of every site on that partition stops there, silently: no error, just
no new rows. librdkafka's statistics report each partition's LSO and high watermark; a partition
whose LSO stays put below its high watermark for STUCK_AFTER_S is held back.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# Sixty checkpoints at the default interval: far beyond a slow checkpoint, well within the
# transaction timeout (5 min) after which the broker aborts it (and its rows are lost to the
# real-time view; the nightly batch recounts them).
STUCK_AFTER_S = 60.0


class HeldBack:
    """Per partition, since when its LSO has stayed at the same offset with rows after it.

    Fed on the ingestor's thread, read by /metrics on another: readers take a snapshot of the
    dict (list() of its items is one C call under the GIL) instead of iterating it live."""

    def __init__(self, stuck_after_s: float = STUCK_AFTER_S, clock: Callable[[], float] = time.monotonic):
        self.stuck_after_s = stuck_after_s
        self.clock = clock
        self._since: dict[int, tuple[int, float]] = {}  # partition -> (LSO, first seen there)

    def observe(self, partition: int, stable: int, high: int) -> None:
        if stable < 0 or stable >= high:  # unknown yet, or every row readable
            self._since.pop(partition, None)
        elif self._since.get(partition, (None,))[0] != stable:
            self._since[partition] = (stable, self.clock())

    def seconds(self) -> dict[int, float]:
        """Partition -> seconds held back at one offset (only those held back)."""
        now = self.clock()
        return {p: now - since for p, (_, since) in list(self._since.items())}

    def stuck(self) -> dict[int, tuple[int, float]]:
        """Partition -> (LSO, seconds) of those held back for STUCK_AFTER_S or longer."""
        now = self.clock()
        return {p: (lso, now - t) for p, (lso, t) in list(self._since.items()) if now - t >= self.stuck_after_s}

    def observe_stats(self, stats: dict, topic: str) -> None:
        """Feed one librdkafka statistics report (its parsed JSON)."""
        for name, part in stats.get("topics", {}).get(topic, {}).get("partitions", {}).items():
            if name != "-1":  # librdkafka's internal "unassigned" partition
                self.observe(int(name), part.get("ls_offset", -1), part.get("hi_offset", -1))
