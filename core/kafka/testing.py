"""An in-memory Kafka for fast unit tests of the logic around it (the collector's hand-off, the
lander, the real-time ingestion): ``InMemoryKafka`` makes producers, consumers and admin clients
with the subset of confluent-kafka's interface the platform uses, over a ``FakeBroker`` that a
test can stop, start again, or restart with an empty log (what the embedded broker does, as it
keeps its log in memory).

What it models: partitions and offsets, keyed partitioning, delivery reports served by poll(),
a bounded local queue (BufferError), message timeouts while the broker is down, purge, consumer
groups with commits and a simple rebalance, topic ids that change when topics are re-created, and
an idempotent producer that can never deliver again once its broker lost its log (it must be
replaced). What it does not: transactions, compression, timing. The real-broker tests (tansu) stay
the proof that the platform works with Kafka; these only make its state machines fast to test.
"""

from __future__ import annotations

import threading
import time
import uuid
import zlib
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_INVALID,
    OFFSET_STORED,
    TIMESTAMP_CREATE_TIME,
    KafkaError,
    KafkaException,
    TopicPartition,
)


class FakeMessage:
    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int,
        error: KafkaError | None = None,
    ):
        self._topic, self._partition, self._offset = topic, partition, offset
        self._key, self._value, self._ts, self._error = key, value, timestamp_ms, error

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return (TIMESTAMP_CREATE_TIME, self._ts)

    def error(self) -> KafkaError | None:
        return self._error


@dataclass
class _Topic:
    partitions: list[list[FakeMessage]]
    topic_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class _Metadata:
    """list_topics()' answer: .topics[name].partitions (partition -> metadata) and .error."""

    topics: dict[str, Any]


@dataclass
class _TopicMetadata:
    partitions: dict[int, Any]
    error: KafkaError | None = None


class FakeBroker:
    """Topics, logs, committed offsets and groups, shared by every client of one InMemoryKafka."""

    def __init__(self):
        self.lock = threading.RLock()
        self.topics: dict[str, _Topic] = {}
        self.committed: dict[str, dict[tuple[str, int], int]] = {}  # group -> (topic, partition) -> offset
        self.groups: dict[str, list[FakeConsumer]] = {}
        self.up = True
        self.epoch = 0  # +1 each time the log is lost: idempotent producers of an older epoch are stuck

    # --- what tests do to the broker ---------------------------------------------------------------
    def create_topic(self, name: str, partitions: int) -> None:
        with self.lock:
            self.topics.setdefault(name, _Topic([[] for _ in range(partitions)]))

    def stop(self) -> None:
        self.up = False

    def start(self) -> None:
        self.up = True

    def restart_empty(self) -> None:
        """Come back with an empty log: same topics and partition counts, new topic ids, offsets
        from 0, no committed offsets (the embedded broker keeps all of it in memory)."""
        with self.lock:
            self.topics = {name: _Topic([[] for _ in t.partitions]) for name, t in self.topics.items()}
            self.committed.clear()
            self.epoch += 1
            for members in self.groups.values():
                for member in members:
                    member._rebalance_due = True
            self.up = True

    def values(self, topic: str) -> list[bytes]:
        """Every message value of a topic, partition by partition."""
        with self.lock:
            return [m.value() for p in self.topics[topic].partitions for m in p]

    # --- used by the clients ---------------------------------------------------------------------
    def check_up(self) -> None:
        if not self.up:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "broker is down (fake)"))

    def append(self, topic: str, partition: int, key, value, ts_ms: int) -> FakeMessage:
        with self.lock:
            log = self.topics[topic].partitions[partition]
            msg = FakeMessage(topic, partition, len(log), key, value, ts_ms)
            log.append(msg)
            return msg

    def metadata(self, topic: str | None = None) -> _Metadata:
        self.check_up()
        with self.lock:
            names = [topic] if topic else list(self.topics)
            return _Metadata(
                {
                    name: _TopicMetadata({p: object() for p in range(len(self.topics[name].partitions))})
                    if name in self.topics
                    else _TopicMetadata({}, KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
                    for name in names
                }
            )

    def join(self, group: str, consumer: FakeConsumer) -> None:
        with self.lock:
            members = self.groups.setdefault(group, [])
            members.append(consumer)
            for member in members:
                member._rebalance_due = True

    def leave(self, group: str, consumer: FakeConsumer) -> None:
        with self.lock:
            members = self.groups.get(group, [])
            if consumer in members:
                members.remove(consumer)
            for member in members:
                member._rebalance_due = True

    def share_of(self, group: str, consumer: FakeConsumer, topics: list[str]) -> list[tuple[str, int]]:
        """Round-robin assignment of the subscribed partitions over the group's members."""
        with self.lock:
            members = self.groups.get(group, [])
            every = [(t, p) for t in sorted(topics) if t in self.topics for p in range(len(self.topics[t].partitions))]
            index = members.index(consumer)
            return [tp for i, tp in enumerate(every) if i % len(members) == index]


def _done(value: Any = None, error: Exception | None = None) -> Future:
    fut: Future = Future()
    fut.set_exception(error) if error is not None else fut.set_result(value)
    return fut


class FakeProducer:
    def __init__(self, broker: FakeBroker, config: dict[str, Any]):
        self.broker = broker
        self.config = config
        self.on_delivery = config.get("on_delivery")
        self.error_cb = config.get("error_cb")
        self.max_queue = int(config.get("queue.buffering.max.messages", 100_000))
        self.timeout_ms = int(config.get("message.timeout.ms", 300_000))
        self.idempotent = bool(config.get("enable.idempotence"))
        self.epoch = broker.epoch
        self.queue: list[tuple] = []  # (topic, partition, key, value, callback, queued_at)
        self.failed: list[tuple] = []  # (callback, error, message) awaiting poll()
        self._round_robin = 0
        self._down_reported = False

    def __len__(self) -> int:
        return len(self.queue) + len(self.failed)

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int = -1,
        on_delivery=None,
        callback=None,
        timestamp: int = 0,
        headers=None,
    ) -> None:
        if len(self.queue) >= self.max_queue:
            raise BufferError("Local: Queue full (fake)")
        with self.broker.lock:
            known = self.broker.topics.get(topic)
            count = len(known.partitions) if known else 1
        if partition < 0:
            if key is not None:
                partition = zlib.crc32(key) % count
            else:
                partition, self._round_robin = self._round_robin % count, self._round_robin + 1
        self.queue.append((topic, partition, key, value, on_delivery or callback or self.on_delivery, time.monotonic()))

    def poll(self, timeout: float = 0) -> int:
        served = self._deliver()
        if not served and timeout and timeout > 0:
            time.sleep(min(timeout, 0.01))
        return served

    def flush(self, timeout: float = -1) -> int:
        deadline = time.monotonic() + (timeout if timeout is not None and timeout >= 0 else 3600)
        while len(self) and time.monotonic() < deadline:
            self.poll(0.01)
        return len(self)

    def purge(self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True) -> None:
        for topic, partition, key, value, callback, _at in self.queue:
            self.failed.append(
                (callback, KafkaError(KafkaError._PURGE_QUEUE), FakeMessage(topic, partition, -1, key, value, 0))
            )
        self.queue.clear()

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> _Metadata:
        return self.broker.metadata(topic)

    def _deliver(self) -> int:
        served = 0
        failed, self.failed = self.failed, []
        for callback, error, msg in failed:
            served += 1
            if callback:
                callback(error, msg)
        if not self.broker.up:
            if not self._down_reported and self.error_cb:
                self._down_reported = True
                self.error_cb(KafkaError(KafkaError._ALL_BROKERS_DOWN, "all brokers down (fake)"))
            return served + self._expire()
        self._down_reported = False
        if self.idempotent and self.epoch != self.broker.epoch:
            return served + self._expire()  # UnknownProducerId: retried until it times out
        queue, self.queue = self.queue, []
        for topic, partition, key, value, callback, _at in queue:
            if topic not in self.broker.topics:
                error, msg = KafkaError(KafkaError._UNKNOWN_TOPIC), FakeMessage(topic, partition, -1, key, value, 0)
            else:
                error, msg = None, self.broker.append(topic, partition, key, value, int(time.time() * 1000))
            served += 1
            if callback:
                callback(error, msg)
        return served

    def _expire(self) -> int:
        now, kept, served = time.monotonic(), [], 0
        for item in self.queue:
            topic, partition, key, value, callback, at = item
            if (now - at) * 1000 < self.timeout_ms:
                kept.append(item)
                continue
            served += 1
            if callback:
                callback(KafkaError(KafkaError._MSG_TIMED_OUT), FakeMessage(topic, partition, -1, key, value, 0))
        self.queue = kept
        return served


class FakeConsumer:
    def __init__(self, broker: FakeBroker, config: dict[str, Any]):
        self.broker = broker
        self.group = config.get("group.id", "")
        self.reset = config.get("auto.offset.reset", "latest")
        self.error_cb = config.get("error_cb")
        self.topics: list[str] = []
        self.on_assign = self.on_revoke = None
        self.positions: dict[tuple[str, int], int] = {}
        self.pending_errors: list[FakeMessage] = []
        self._rebalance_due = False
        self._down_reported = False
        self.closed = False

    def subscribe(self, topics: list[str], on_assign=None, on_revoke=None) -> None:
        self.topics, self.on_assign, self.on_revoke = list(topics), on_assign, on_revoke
        self.broker.join(self.group, self)

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.positions = {}
        for tp in partitions:
            self._position(tp.topic, tp.partition, tp.offset)

    def unassign(self) -> None:
        self.positions = {}

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(t, p, o) for (t, p), o in self.positions.items()]

    def seek(self, tp: TopicPartition) -> None:
        if (tp.topic, tp.partition) not in self.positions:
            raise KafkaException(KafkaError(KafkaError._STATE, "partition not assigned (fake)"))
        self._position(tp.topic, tp.partition, tp.offset)

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[FakeMessage]:
        if not self.broker.up:
            if not self._down_reported and self.error_cb:
                self._down_reported = True
                self.error_cb(KafkaError(KafkaError._ALL_BROKERS_DOWN, "all brokers down (fake)"))
            time.sleep(min(max(timeout, 0), 0.01))
            return []
        self._down_reported = False
        if self._rebalance_due and self.topics:
            self._rebalance()
        out, self.pending_errors = self.pending_errors[:num_messages], self.pending_errors[num_messages:]
        with self.broker.lock:
            for key, position in list(self.positions.items()):
                log = self.broker.topics[key[0]].partitions[key[1]] if key[0] in self.broker.topics else []
                if position is None or position >= len(log):
                    continue
                take = log[position : position + num_messages - len(out)]
                out.extend(take)
                self.positions[key] = position + len(take)
                if len(out) >= num_messages:
                    break
        if not out and timeout and timeout > 0:
            time.sleep(min(timeout, 0.01))
        return out

    def poll(self, timeout: float = -1) -> FakeMessage | None:
        got = self.consume(1, timeout)
        return got[0] if got else None

    def commit(
        self, message: FakeMessage | None = None, offsets: list[TopicPartition] | None = None, asynchronous: bool = True
    ) -> None:
        self.broker.check_up()
        if message is not None:
            offsets = [TopicPartition(message.topic(), message.partition(), message.offset() + 1)]
        if offsets is None:
            offsets = [TopicPartition(t, p, o) for (t, p), o in self.positions.items() if o is not None]
        with self.broker.lock:
            stored = self.broker.committed.setdefault(self.group, {})
            for tp in offsets:
                stored[(tp.topic, tp.partition)] = tp.offset

    def committed(self, partitions: list[TopicPartition], timeout: float = -1) -> list[TopicPartition]:
        self.broker.check_up()
        with self.broker.lock:
            stored = self.broker.committed.get(self.group, {})
            return [
                TopicPartition(tp.topic, tp.partition, stored.get((tp.topic, tp.partition), OFFSET_INVALID))
                for tp in partitions
            ]

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.topics:
                self.broker.leave(self.group, self)

    def _position(self, topic: str, partition: int, offset: int) -> None:
        with self.broker.lock:
            end = len(self.broker.topics[topic].partitions[partition]) if topic in self.broker.topics else 0
            committed = self.broker.committed.get(self.group, {}).get((topic, partition))
        if offset >= 0:
            self.positions[(topic, partition)] = offset
        elif offset == OFFSET_BEGINNING:
            self.positions[(topic, partition)] = 0
        elif offset == OFFSET_END:
            self.positions[(topic, partition)] = end
        elif offset in (OFFSET_STORED, OFFSET_INVALID) and committed is not None:
            self.positions[(topic, partition)] = committed
        elif self.reset in ("earliest", "smallest", "beginning"):
            self.positions[(topic, partition)] = 0
        elif self.reset in ("latest", "largest", "end"):
            self.positions[(topic, partition)] = end
        else:  # auto.offset.reset=error: the application must say where to start
            self.positions[(topic, partition)] = None
            self.pending_errors.append(
                FakeMessage(topic, partition, offset, None, None, 0, KafkaError(KafkaError._AUTO_OFFSET_RESET))
            )

    def _rebalance(self) -> None:
        self._rebalance_due = False
        share = self.broker.share_of(self.group, self, self.topics)
        if set(share) == set(self.positions):
            return
        old = self.assignment()
        if old:
            if self.on_revoke:
                self.on_revoke(self, old)
            else:
                self.unassign()
        new = [TopicPartition(t, p, OFFSET_INVALID) for t, p in share]
        if self.on_assign:
            self.on_assign(self, new)
        else:
            self.assign(new)


class FakeAdmin:
    def __init__(self, broker: FakeBroker):
        self.broker = broker

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> _Metadata:
        return self.broker.metadata(topic)

    def describe_topics(self, topics, request_timeout: float = -1) -> dict[str, Future]:
        out = {}
        for name in topics.topic_names:
            if not self.broker.up:
                out[name] = _done(error=KafkaException(KafkaError(KafkaError._TRANSPORT)))
            elif name not in self.broker.topics:
                out[name] = _done(error=KafkaException(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART)))
            else:
                out[name] = _done(type("TopicDescription", (), {"topic_id": self.broker.topics[name].topic_id}))
        return out

    def create_topics(self, new_topics: list) -> dict[str, Future]:
        self.broker.check_up()
        out = {}
        for spec in new_topics:
            if spec.topic in self.broker.topics:
                out[spec.topic] = _done(error=KafkaException(KafkaError(KafkaError.TOPIC_ALREADY_EXISTS)))
            else:
                self.broker.create_topic(spec.topic, spec.num_partitions)
                out[spec.topic] = _done(None)
        return out


class InMemoryKafka:
    """KafkaClients (core.kafka.clients) over one FakeBroker."""

    def __init__(self, broker: FakeBroker | None = None):
        self.broker = broker or FakeBroker()

    def producer(self, config: dict[str, Any] | None = None) -> FakeProducer:
        return FakeProducer(self.broker, dict(config or {}))

    def consumer(self, config: dict[str, Any] | None = None) -> FakeConsumer:
        return FakeConsumer(self.broker, dict(config or {}))

    def admin(self) -> FakeAdmin:
        return FakeAdmin(self.broker)
