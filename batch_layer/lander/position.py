"""The lander's durable position, one small JSON file per topic-partition in the raw store.

The raw store, not Kafka, is the source of truth for where landing stands (as in Kafka
Connect's HDFS sink): Kafka commits are made too, for monitoring and for the collector's
retain-until-landed, but a lost commit can never cause a gap or a duplicate.

- ``next``: the next broker offset to land.
- ``intent``: [first, last] of a batch being written. Written before the files; cleared after.
  A crash in between is repaired on restart by landing exactly that offset range again, which
  rewrites exactly the same file names.
- ``topic_id`` and ``base``: when the topic id changes (a broker that keeps its log in memory
  restarted empty), offsets start again at 0. File names use logical offsets = base + offset,
  with the new base continuing after the old generation, so names never collide. On a real,
  persistent Kafka the id never changes, base stays 0 and names are plain broker offsets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import orjson

from core.lake import layout
from core.lake.storage import Storage


@dataclass
class PartitionState:
    topic_id: str
    base: int = 0
    next: int | None = None
    intent: list[int] | None = None

    def for_topic_id(self, topic_id: str) -> PartitionState:
        """The state to use under ``topic_id``: itself, or a new generation after this one."""
        if topic_id == self.topic_id:
            return self
        landed_through = max(self.next or 0, (self.intent[1] + 1) if self.intent else 0)
        return PartitionState(topic_id=topic_id, base=self.base + landed_through)


def load_state(store: Storage, topic: str, partition: int, topic_id: str) -> PartitionState:
    path = layout.lander_position(topic, partition)
    if not store.exists(path):
        return PartitionState(topic_id=topic_id)
    return PartitionState(**orjson.loads(store.read(path))).for_topic_id(topic_id)


def save_state(store: Storage, topic: str, partition: int, state: PartitionState) -> None:
    store.write_atomic(layout.lander_position(topic, partition), orjson.dumps(asdict(state)))
