"""The collector's hand-off: request handlers append to an in-memory inbox and return; one
background thread owns everything that can block (librdkafka, the disk spool, replay).

States: DIRECT (produce to Kafka) or SPOOLING (append to the disk spool). We enter SPOOLING when
librdkafka says the broker is down, its queue is full, or a delivery fails; while any of our
segments is on disk, new events are spooled too, so replay keeps their order. When the broker
answers again, segments are replayed oldest first, and DIRECT resumes once the spool is empty.

Its parts: the producer (pixel_api.delivery), retain-until-landed (pixel_api.retention, fed by
pixel_api.landing_monitor, judged by pixel_api.generations) and the hot path's tallies
(pixel_api.tallies).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from confluent_kafka import KafkaError

from core.kafka.clients import KafkaClients, clients_for, topic_ids
from core.settings import Settings
from pixel_api import metrics
from pixel_api.delivery import Delivery
from pixel_api.generations import TopicGenerations
from pixel_api.landing_monitor import LandingMonitor
from pixel_api.retention import Retention
from pixel_api.spool import Record, Spool
from pixel_api.tallies import HitTallies

log = logging.getLogger(__name__)

REPLAY_CHUNK = 5000
BROKER_PROBE_INTERVAL_S = 1.0
GAUGES_INTERVAL_S = 1.0


class HandOff:
    def __init__(self, settings: Settings, clients: KafkaClients | None = None):
        self.settings = settings
        self.clients = clients_for(settings, clients)
        self.inbox: deque[Record] = deque()
        self.tallies = HitTallies()
        self.spool = Spool(settings.spool_dir, settings.spool_fsync_interval_ms / 1000)
        self.retention = Retention(settings.retain_max_events) if settings.retain_until_landed else None
        self.generations = TopicGenerations()
        self.spooling = bool(self.spool.segments())  # leftovers from a previous run: replay first
        self.broker_down = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pixel-handoff", daemon=True)
        self.delivery = Delivery(settings, self.clients, self._delivered, self._failed, self._on_error)
        self.admin = self.clients.admin()
        self.monitor = LandingMonitor(settings, self.clients, self._stop, self._keep_confirming)
        self._last_probe = 0.0
        self._last_gauges = 0.0
        self._final_deadline = 0.0
        self._replace_pending = False
        self._steps = 0  # steps begun
        self._quiet_step = -1  # the last step that found nothing to take and nothing in flight

    # --- called from request handlers: must never block ---------------------------------------
    def submit(self, topic: str, key: bytes, value: bytes) -> None:
        self.inbox.append((topic, key, value))

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        if self.retention is not None:
            self._learn_topic_ids()  # before anything is delivered (if the broker is up)
        self._thread.start()
        if self.retention is not None:
            self.monitor.start()

    def stop(self, wait_landed_s: float = 10.0) -> None:
        """Deliver or spool everything; with retention, wait (bounded) for the lander to confirm."""
        self._final_deadline = time.monotonic() + 5.0 + wait_landed_s
        self._stop.set()
        self._thread.join()
        self._drain_final()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until everything submitted before this call has been delivered or spooled: a
        step that began after the call found the inbox empty and the producer holding nothing.
        False if that did not happen within ``timeout`` seconds."""
        begun = self._steps
        deadline = time.monotonic() + timeout
        while self._quiet_step <= begun:
            if time.monotonic() > deadline or not self._thread.is_alive():
                return False
            time.sleep(0.005)
        return True

    # --- the hand-off thread -------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._step()
            self.delivery.poll(0.005)
        self._step()

    def _step(self) -> None:
        self._steps += 1
        step = self._steps
        if self._replace_pending:  # requested by _on_error, which runs inside producer.poll()
            self._replace_pending = False
            self.delivery.replace()
        batch = self._drain_inbox()
        if batch:
            if self.spooling:
                self._to_spool(batch)
            else:
                self._produce(batch)
        self._apply_landing_reports()
        self.spool.maybe_fsync()
        if self.spooling and self._broker_answers():
            self._replay_one_chunk()
        self.tallies.fold()
        self._update_gauges()
        if not batch and not self.delivery.pending():
            self._quiet_step = step

    def _drain_inbox(self) -> list[Record]:
        batch = []
        pop = self.inbox.popleft
        try:
            while True:
                batch.append(pop())
        except IndexError:
            return batch

    def _produce(self, batch: list[Record]) -> None:
        refused = self.delivery.produce(batch)
        if refused:
            self.spooling = True
            self._to_spool(refused)

    def _to_spool(self, batch: list[Record]) -> None:
        self.spool.append(batch)
        metrics.SPOOLED.inc(len(batch))

    # --- the producer's reports (served on this thread, inside poll) -----------------------------
    def _delivered(self, msg, value: bytes) -> None:
        self.tallies.delivered(msg.topic(), len(value))
        if self.retention is not None:
            self.retention.add(msg.topic(), msg.partition(), msg.offset(), msg.key() or b"", value)

    def _failed(self, record: Record) -> None:
        self.spooling = True
        self.spool.append([record])
        metrics.SPOOLED.inc()

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

    # --- spooling and replay -------------------------------------------------------------------
    def _broker_answers(self) -> bool:
        now = time.monotonic()
        if now - self._last_probe < BROKER_PROBE_INTERVAL_S:
            return not self.broker_down
        self._last_probe = now
        up = self.delivery.broker_answers()
        if up and self.broker_down:
            log.info("broker reachable again; replaying the spool")
            self.delivery.replace()
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
                if records and not self.delivery.deliver_now(records):
                    self.broker_down = True
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

    # --- retain-until-landed -------------------------------------------------------------------
    def _keep_confirming(self) -> bool:
        return bool(self.retention) and not self._final_wait_over()

    def _learn_topic_ids(self) -> None:
        try:
            self._compare_topic_ids(topic_ids(self.admin, [self.settings.raw_topic, self.settings.bad_topic]))
        except Exception as exc:
            log.debug("topic ids not available yet: %s", exc)

    def _compare_topic_ids(self, ids: dict[str, str]) -> None:
        recreated = self.generations.recreated(ids)
        for topic in recreated:
            records, oldest_ns = self.retention.take_topic(topic)
            log.warning(
                "topic %s was re-created (broker lost its log); re-sending %d unlanded events", topic, len(records)
            )
            if records:
                self.spool.write_segment(records, oldest_ns)
                metrics.RESENT.inc(len(records))
                self.spooling = True
        if recreated:
            self.delivery.replace()

    def _apply_landing_reports(self) -> None:
        """Apply the monitor's reports: first any generation change, then confirmations (which
        are only meaningful for the generation the events were delivered under)."""
        reports = self.monitor.reports
        while reports:
            ids, committed = reports.popleft()
            self._compare_topic_ids(ids)
            self.retention.confirm({tp: off for tp, off in committed.items() if self.generations.same(ids, tp[0])})

    # --- shutdown and metrics ------------------------------------------------------------------
    def _final_wait_over(self) -> bool:
        return time.monotonic() > self._final_deadline

    def _drain_final(self) -> None:
        """On shutdown: deliver what we can, spool the rest, then give the lander a bounded time
        to confirm what was delivered (so stopping the platform loses nothing)."""
        if not self.spooling:
            self.delivery.producer.flush(5.0)
        deadline = time.monotonic() + 5.0
        while self.spooling and time.monotonic() < deadline:
            before = self.spool.pending_bytes()
            self._step()
            self.delivery.poll(0.05)
            if self.broker_down and self.spool.pending_bytes() == before:
                break
        # Whatever librdkafka still holds is handed back through the delivery reports (-> spool).
        self.delivery.hand_back()
        while self.retention is not None and len(self.retention) and not self._final_wait_over():
            self._apply_landing_reports()
            time.sleep(0.05)
        self._apply_landing_reports()
        if self.retention is not None and len(self.retention):
            log.warning("%d delivered events not yet confirmed landed at shutdown", len(self.retention))
        self.spool.seal()
        self.tallies.fold()
        metrics.SPOOL_BYTES.set(self.spool.pending_bytes())

    def _update_gauges(self) -> None:
        now = time.monotonic()
        if now - self._last_gauges >= GAUGES_INTERVAL_S:
            self._last_gauges = now
            metrics.SPOOL_BYTES.set(self.spool.pending_bytes())
            metrics.BROKER_UP.set(0 if self.broker_down else 1)  # else 0 until the broker first went down
            if self.retention is not None:
                metrics.RETAINED.set(len(self.retention))
