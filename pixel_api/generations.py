"""Which generation of each topic the collector's delivered events belong to.

A topic's id changes when it is re-created: the embedded broker keeps its log in memory, so after
a restart it comes back with new, empty topics. Events delivered under the old id and not yet
landed are then gone from the broker and must be sent again, and the lander's committed offsets
only confirm events of the generation they were read under.
"""

from __future__ import annotations


class TopicGenerations:
    def __init__(self):
        self.ids: dict[str, str] = {}

    def recreated(self, ids: dict[str, str]) -> list[str]:
        """Learn ``ids`` (topic -> id); returns the topics whose known id changed."""
        changed = [topic for topic, topic_id in ids.items() if self.ids.get(topic) not in (None, topic_id)]
        self.ids.update(ids)
        return changed

    def same(self, ids: dict[str, str], topic: str) -> bool:
        """Was ``ids`` (as reported with some offsets) read under the generation we know?"""
        return ids.get(topic) is not None and ids.get(topic) == self.ids.get(topic)
