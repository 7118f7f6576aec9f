"""Two `pixel lander` processes in one consumer group against a real tansu broker: they split
the partitions; one SIGKILLed mid-stream, the other takes its partitions over, and the raw
dataset still holds every event exactly once (an interrupted batch is re-landed under the same
name, from the position the killed lander saved in the raw store)."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter

import orjson
import pytest
from confluent_kafka import Producer

from tests.harness import Service, read_landed, wait_until

pytestmark = pytest.mark.slow

SITES = [f"s{i}.example" for i in range(12)]  # keys spread over every partition


def raw_partitions(service: Service, topic: str) -> set[int]:
    """The topic's partitions in the lander's latest assignment (its log)."""
    assigned = re.findall(r"assigned (.*)", service.log())
    if not assigned:
        return set()
    return {int(p) for p in re.findall(rf"{re.escape(topic)}\[(\d+)\]", assigned[-1])}


class Stream:
    """Events at ~1,000/s over every partition until stopped; how many were sent."""

    def __init__(self, settings):
        self.settings, self.sent, self.stopped = settings, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        producer = Producer({"bootstrap.servers": self.settings.kafka_bootstrap, "linger.ms": 5})
        while not self.stopped.is_set():
            for _ in range(50):
                site = SITES[self.sent % len(SITES)]
                value = {"v": 1, "event_id": f"e{self.sent}", "ts": int(time.time() * 1000), "site": site}
                producer.produce(self.settings.raw_topic, orjson.dumps(value), site.encode())
                self.sent += 1
            producer.poll(0)
            time.sleep(0.05)
        assert producer.flush(30) == 0

    def __enter__(self) -> Stream:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join(60)


def test_landers_in_a_group_split_partitions_and_take_over_a_killed_ones(settings, broker, tmp_path):
    settings.lander_flush_events = 400  # batches cut often: a kill lands between them or in one
    topic, every = settings.raw_topic, set(range(settings.raw_partitions))
    landers = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        landers.append(Service("lander", settings, tmp_path / name).start())
    a, b = landers
    try:

        def split() -> bool:
            mine, theirs = raw_partitions(a, topic), raw_partitions(b, topic)
            return bool(mine) and bool(theirs) and not mine & theirs and mine | theirs == every

        wait_until(split, 60, message=f"both landers assigned; logs:\n{a.log()[-1500:]}\n{b.log()[-1500:]}")
        with Stream(settings) as stream:
            wait_until(lambda: stream.sent >= 3000, 30, message="3,000 events sent")
            landed = {e["site"] for e in read_landed(settings.data_dir)}
            assert landed, "nothing landed before the kill"
            a.kill()  # SIGKILL: mid-stream, with batches in memory and maybe one half written
            wait_until(lambda: raw_partitions(b, topic) == every, 60, message=f"takeover; log:\n{b.log()[-2000:]}")
            wait_until(lambda: stream.sent >= 8000, 30, message="8,000 events sent")
        sent = stream.sent
        wait_until(lambda: len(read_landed(settings.data_dir)) >= sent, 60, message=f"{sent} events landed")
        time.sleep(2)  # anything landed twice would show up by now
    finally:
        for lander in landers:
            lander.kill()
    counts = Counter(e["event_id"] for e in read_landed(settings.data_dir))
    assert set(counts) == {f"e{i}" for i in range(sent)}  # nothing lost
    assert [event for event, n in counts.items() if n > 1] == []  # nothing twice
