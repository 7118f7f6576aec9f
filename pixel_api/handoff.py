"""The collector's hand-off: request handlers append to an in-memory inbox and return; one
background thread owns everything that can block (librdkafka, the disk spool, replay).

States: DIRECT (produce to Kafka) or SPOOLING (append to the disk spool). We enter SPOOLING when
librdkafka says the broker is down, its queue is full, or a delivery fails; while any of our
segments is on disk, new events are spooled too, so replay keeps their order. When the broker
answers again, segments are replayed oldest first, and DIRECT resumes once the spool is empty.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from core.kafka import config as kafka
from core.settings import Settings
from pixel_api import metrics
from pixel_api.retention import Retention
from pixel_api.spool import Record, Spool

log = logging.getLogger(__name__)

REPLAY_CHUNK = 5000
BROKER_PROBE_INTERVAL_S = 1.0
LANDING_CHECK_INTERVAL_S = 1.0


class HandOff:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.inbox: deque[Record] = deque()
        self.spool = Spool(settings.spool_dir, settings.spool_fsync_interval_ms / 1000)
        self.retention = Retention(settings.retain_max_events) if settings.retain_until_landed else None
        self.spooling = bool(self.spool.segments())  # leftovers from a previous run: replay first
        self.broker_down = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pixel-handoff", daemon=True)
        self._landing: deque = deque()  # results from the landing monitor thread
        self._monitor = threading.Thread(target=self._monitor_landing, name="pixel-landing", daemon=True)
        self._last_probe = 0.0
        self._last_gauges = 0.0
        self._final_deadline = 0.0
        self._replace_pending = False
        # Hot-path tallies folded into Prometheus by the hand-off thread.
        self.hits: dict[str, int] = {"gif": 0, "collect": 0}
        self.latencies: list[float] = []
        self.producer = self._new_producer()
        self.admin = kafka.admin(settings)
        # Topic ids the retained events were delivered under; a different id means the broker
        # came back with a new, empty log and the retained events must be sent again.
        self.topic_ids: dict[str, str] = {}

    # --- called from request handlers: must never block ---------------------------------------
    def submit(self, topic: str, key: bytes, value: bytes) -> None:
        self.inbox.append((topic, key, value))

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        if self.retention is not None:
            self._learn_topic_ids()  # before anything is delivered (if the broker is up)
        self._thread.start()
        if self.retention is not None:
            self._monitor.start()

    def stop(self, wait_landed_s: float = 10.0) -> None:
        """Deliver or spool everything; with retention, wait (bounded) for the lander to confirm."""
        self._final_deadline = time.monotonic() + 5.0 + wait_landed_s
        self._stop.set()
        self._thread.join()
        self._drain_final()

    # --- the hand-off thread -------------------------------------------------------------------
    def _new_producer(self) -> Producer:
        s = self.settings
        return Producer(
            {
                **kafka.client_config(s),
                "enable.idempotence": True,
                "acks": "all",
                "compression.type": "lz4",
                "linger.ms": s.producer_linger_ms,
                "queue.buffering.max.messages": s.producer_queue_max_messages,
                # After this, an undelivered event is handed back to us and spooled.
                "message.timeout.ms": 10_000,
                "reconnect.backoff.max.ms": 1000,
                "on_delivery": self._on_delivery,
                "error_cb": self._on_error,
            }
        )

    def _on_error(self, err: KafkaError) -> None:
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            if not self.broker_down:
                log.warning("broker unreachable (%s); spooling hits to disk", err.str())
            self.broker_down = True
            self.spooling = True
            metrics.BROKER_UP.set(0)
            # Don't let this producer deliver its backlog to whatever broker comes back: if that
            # broker has a new, empty log, those events would be counted under the old one.
            # Its backlog is spooled instead and replayed after the topic ids were compared.
            if err.code() == KafkaError._ALL_BROKERS_DOWN and self.retention is not None:
                self._replace_pending = True

    def _on_delivery(self, err: KafkaError | None, msg) -> None:
        if err is None:
            metrics.PRODUCED.labels(msg.topic()).inc()
            metrics.BYTES.inc(len(msg.value()))
            if self.retention is not None:
                self.retention.add(msg.topic(), msg.partition(), msg.offset(), msg.key() or b"", msg.value())
            return
        metrics.PRODUCE_ERRORS.inc()
        self.spooling = True
        self.spool.append([(msg.topic(), msg.key() or b"", msg.value())])
        metrics.SPOOLED.inc()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._step()
            self.producer.poll(0.005)
        self._step()

    def _step(self) -> None:
        if self._replace_pending:  # requested by _on_error, which runs inside producer.poll()
            self._replace_pending = False
            self._replace_producer()
        batch = self._drain_inbox()
        if batch:
            if self.spooling:
                self._to_spool(batch)
            else:
                self._produce(batch)
        self._apply_landing_results()
        self.spool.maybe_fsync()
        if self.spooling and self._broker_answers():
            self._replay_one_chunk()
        self._fold_metrics()

    def _drain_inbox(self) -> list[Record]:
        batch = []
        pop = self.inbox.popleft
        try:
            while True:
                batch.append(pop())
        except IndexError:
            return batch

    def _produce(self, batch: list[Record]) -> None:
        for i, (topic, key, value) in enumerate(batch):
            try:
                self.producer.produce(topic, value, key)
            except BufferError:
                log.warning("producer queue full; spooling to disk")
                self.spooling = True
                self._to_spool(batch[i:])
                return
            except KafkaException as exc:
                log.error("produce failed (%s); spooling to disk", exc)
                self.spooling = True
                self._to_spool(batch[i:])
                return

    def _to_spool(self, batch: list[Record]) -> None:
        self.spool.append(batch)
        metrics.SPOOLED.inc(len(batch))

    def _broker_answers(self) -> bool:
        now = time.monotonic()
        if now - self._last_probe < BROKER_PROBE_INTERVAL_S:
            return not self.broker_down
        self._last_probe = now
        try:
            md = self.producer.list_topics(self.settings.raw_topic, timeout=1.0)
            up = bool(md.topics.get(self.settings.raw_topic) and md.topics[self.settings.raw_topic].partitions)
        except KafkaException:
            up = False
        if up and self.broker_down:
            log.info("broker reachable again; replaying the spool")
            self._replace_producer()
            if self.retention is not None:
                self._learn_topic_ids()
        self.broker_down = not up
        metrics.BROKER_UP.set(1 if up else 0)
        return up

    def _replay_one_chunk(self) -> None:
        """Replay one chunk of the oldest segment we can lock; leave SPOOLING when none is left."""
        self.spool.seal()  # new arrivals go to a new segment, after the ones being replayed
        for seg in self.spool.segments():
            fh = self.spool.claim(seg)
            if fh is None:
                continue  # another live worker's segment: it replays its own
            try:
                records, pos = self.spool.read(fh, REPLAY_CHUNK)
                if records and not self._deliver_synchronously(records):
                    return  # broker went away again; keep the segment and retry later
                if records:
                    metrics.REPLAYED.inc(len(records))
                    self.spool.advance(fh, pos)
                    return
                self.spool.finish(fh)
                fh = None
            finally:
                if fh is not None:
                    fh.close()
        if not self.spool.writing:
            self.spooling = False
            log.info("spool replayed; producing directly again")

    def _deliver_synchronously(self, records: list[Record]) -> bool:
        failed = []
        pending = [len(records)]

        def done(err, msg):
            pending[0] -= 1
            if err is not None:
                failed.append(err)
            else:
                self._on_delivery(None, msg)

        for topic, key, value in records:
            while True:
                try:
                    self.producer.produce(topic, value, key, on_delivery=done)
                    break
                except BufferError:
                    self.producer.poll(0.05)
        deadline = time.monotonic() + 15
        while pending[0] > 0 and time.monotonic() < deadline:
            self.producer.poll(0.05)
        if failed or pending[0]:
            # Some of the chunk may have been delivered: they'll be sent again (same event_id).
            log.warning("replay chunk not fully delivered (%s); will retry", failed[:1] or "timeout")
            self.broker_down = True
            return False
        return True

    def _fold_metrics(self) -> None:
        for route in ("gif", "collect"):
            n = self.hits[route]
            if n:
                self.hits[route] -= n
                metrics.HITS.labels(route).inc(n)
        if self.latencies:
            lat, self.latencies = self.latencies, []
            for value in lat:
                metrics.LATENCY.observe(value)
        now = time.monotonic()
        if now - self._last_gauges >= 1.0:
            self._last_gauges = now
            metrics.SPOOL_BYTES.set(self.spool.pending_bytes())
            if self.retention is not None:
                metrics.RETAINED.set(len(self.retention))

    # --- retain-until-landed -------------------------------------------------------------------
    def _monitor_landing(self) -> None:
        """Poll the lander group's committed offsets and the topic ids (blocking calls, so off
        the hand-off thread); results are queued for the hand-off thread to apply."""
        s = self.settings
        topics = [s.raw_topic, s.bad_topic]
        client = kafka.admin(s)
        group = Consumer({**kafka.client_config(s), "group.id": s.lander_group, "enable.auto.commit": False})
        try:
            while True:
                if not self._stop.is_set():
                    self._stop.wait(LANDING_CHECK_INTERVAL_S)
                elif not len(self.retention) or self._final_wait_over():
                    return  # stopping: keep confirming only while something awaits landing
                else:
                    time.sleep(0.2)
                try:
                    ids = kafka.topic_ids(client, topics, timeout=2.0)
                    md = client.list_topics(timeout=2.0)
                    tps = [TopicPartition(t, p) for t in topics for p in md.topics[t].partitions]
                    committed = group.committed(tps, timeout=2.0)
                    if kafka.topic_ids(client, topics, timeout=2.0) != ids:
                        continue  # restarted between the two reads: offsets of unknown generation
                except Exception:
                    continue  # broker down: nothing can be confirmed now
                self._landing.append(
                    (ids, {(tp.topic, tp.partition): tp.offset for tp in committed if tp.offset >= 0})
                )
        finally:
            group.close()

    def _learn_topic_ids(self) -> None:
        try:
            self._compare_topic_ids(kafka.topic_ids(self.admin, [self.settings.raw_topic, self.settings.bad_topic]))
        except Exception as exc:
            log.debug("topic ids not available yet: %s", exc)

    def _compare_topic_ids(self, ids: dict[str, str]) -> None:
        for topic, topic_id in ids.items():
            known = self.topic_ids.get(topic)
            self.topic_ids[topic] = topic_id
            if known is None or known == topic_id:
                continue
            records, oldest_ns = self.retention.take_topic(topic)
            log.warning("topic %s was re-created (broker lost its log); re-sending %d unlanded events",
                        topic, len(records))
            if records:
                self.spool.write_segment(records, oldest_ns)
                metrics.RESENT.inc(len(records))
                self.spooling = True
            self._replace_producer()

    def _apply_landing_results(self) -> None:
        """Apply the monitor's reports: first any generation change, then confirmations (which
        are only meaningful for the generation the events were delivered under)."""
        while self._landing:
            ids, committed = self._landing.popleft()
            self._compare_topic_ids(ids)
            self.retention.confirm({tp: off for tp, off in committed.items() if ids.get(tp[0]) == self.topic_ids.get(tp[0])})

    def _replace_producer(self) -> None:
        """A broker that lost its log also lost our idempotent producer id, and the old
        producer would retry forever (UnknownProducerId). Start a new one; whatever the old one
        still held comes back through _on_delivery as failed, and is spooled."""
        old, self.producer = self.producer, self._new_producer()
        _hand_back(old)


    def _final_wait_over(self) -> bool:
        return time.monotonic() > self._final_deadline

    def _drain_final(self) -> None:
        """On shutdown: deliver what we can, spool the rest, then give the lander a bounded time
        to confirm what was delivered (so stopping the platform loses nothing)."""
        if not self.spooling:
            self.producer.flush(5.0)
        deadline = time.monotonic() + 5.0
        while self.spooling and time.monotonic() < deadline:
            before = self.spool.pending_bytes()
            self._step()
            self.producer.poll(0.05)
            if self.broker_down and self.spool.pending_bytes() == before:
                break
        # Whatever librdkafka still holds is handed back through _on_delivery (-> spool).
        _hand_back(self.producer)
        while self.retention is not None and len(self.retention) and not self._final_wait_over():
            self._apply_landing_results()
            time.sleep(0.05)
        self._apply_landing_results()
        if self.retention is not None and len(self.retention):
            log.warning("%d delivered events not yet confirmed landed at shutdown", len(self.retention))
        self.spool.seal()
        self._fold_metrics()
        metrics.SPOOL_BYTES.set(self.spool.pending_bytes())


def _hand_back(producer: Producer) -> None:
    """Purge a producer and serve the failed delivery reports that the purge creates, so
    everything it still held goes through _on_delivery to the spool. Only poll() serves those
    reports: dropping a purged producer unserved would lose its events."""
    producer.purge()  # in-queue and in-flight
    deadline = time.monotonic() + 5.0
    while len(producer) and time.monotonic() < deadline:
        producer.poll(0.05)
    if len(producer):
        log.error("%d events still held by a purged producer", len(producer))
