"""Keeps the analytics store in step with the lake: loads every closed day (up to the batch
watermark) whose run the store hasn't loaded, a new day or a re-run, from its clean Parquet.

The serving process does the loading itself, so the nightly job never needs the store's file
(DuckDB allows one writing process per file): `pixel batch` runs while `pixel serve` is up, and
the closed day appears in the store within one sync interval. Until a day is loaded, its numbers
come from the real-time store (provisional), so the seam is the store's own watermark.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq

from core.lake import layout
from core.lake.storage import Storage
from core.lake.watermark import read_watermark
from serving.store.embedded import EmbeddedStore
from serving.store.loader import HITS_ARROW, hits_of_day
from serving.store.schema import CLEAN_INPUTS

log = logging.getLogger(__name__)


class LakeSync:
    def __init__(self, storage: Storage, store: EmbeddedStore, interval_s: float = 5.0, druid=None):
        """``druid``: also load each closed day into Druid (serving.druid.batch_ingest.DruidDays)."""
        self.storage = storage
        self.store = store
        self.druid = druid
        self.interval_s = interval_s
        self.watermark: dt.date | None = None  # every closed day up to it is in the store
        self.site_events: dict[str, int] = store.site_events()  # events per site in the store
        self.loaded_events = 0
        self.load_seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lake-sync", daemon=True)

    def runs(self) -> dict[dt.date, str]:
        """Closed day -> its run's fingerprint (the summary changes with every run of the day)."""
        out = {}
        for path in self.storage.list_files(f"{layout.VIEWS}/_runs"):
            day = layout.run_summary_day(path)
            if day is not None:
                out[day] = hashlib.sha256(self.storage.read(path)).hexdigest()[:16]
        return out

    def sync_once(self) -> list[dt.date]:
        """Load what is missing or stale; returns the days loaded."""
        lake_watermark = read_watermark(self.storage)
        if lake_watermark is None:
            return []
        runs = {day: run for day, run in self.runs().items() if day <= lake_watermark}
        loaded = self.store.loaded()
        done = []
        for day in sorted(runs):
            if loaded.get(day) != runs[day]:
                self.load_day(day, runs[day])
                done.append(day)
        if done:
            self.site_events = self.store.site_events()
        self.watermark = lake_watermark
        if self.druid is not None:
            self._load_into_druid(runs)
        return done

    def _load_into_druid(self, runs: dict[dt.date, str]) -> None:
        from serving.druid.batch_ingest import DruidTaskFailed

        in_druid = self.druid.loaded()
        for day in sorted(runs):
            if in_druid.get(day) == runs[day]:
                continue
            try:
                task = self.druid.load(day, runs[day])
                log.info("%s ingested into Druid as batch rows (task %s)", day, task)
            except DruidTaskFailed as exc:
                log.error("%s not ingested into Druid: %s; retried at the next sync", day, exc)
                return

    def load_day(self, day: dt.date, run: str) -> int:
        started = time.monotonic()
        parts = [p for p in self.storage.list_files(layout.day_dir(layout.CLEAN, day)) if p.endswith(".parquet")]
        tables = [pq.read_table(io.BytesIO(self.storage.read(p)), columns=CLEAN_INPUTS) for p in parts]
        hits = hits_of_day(pa.concat_tables(tables), day) if tables else HITS_ARROW.empty_table()
        self.store.replace_day(day, hits, run)
        seconds = time.monotonic() - started
        self.loaded_events += hits.num_rows
        self.load_seconds += seconds
        log.info("loaded %s into the store: %d events in %.2f s", day, hits.num_rows, seconds)
        return hits.num_rows

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync_once()
            except Exception:  # the lake unreachable, a day half-published: try again next time
                log.exception("store sync failed; retrying in %.0f s", self.interval_s)
            self._stop.wait(self.interval_s)
