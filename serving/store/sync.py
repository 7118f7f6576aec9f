"""Keeps the analytics store in step with the lake: loads every closed day (up to the batch
watermark) whose run the store hasn't loaded, a new day or a re-run, from its clean Parquet.
The store is the embedded one (serving.store.embedded) or Druid (serving.druid.batch_ingest.
DruidDays): both take a closed day as its hits (serving.store.loader) and say which runs they hold.

The serving process does the loading itself, so the nightly job never needs the store's file
(DuckDB allows one writing process per file): `pixel batch` runs while `pixel serve` is up, and
the closed day appears in the store within one sync interval. Until a day is loaded, its numbers
come from the real-time store (provisional), so the seam is the store's own watermark.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import threading
import time
from typing import Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from core.lake import layout
from core.lake.storage import Storage
from core.lake.watermark import read_watermark
from serving.store import restatements
from serving.store.loader import HITS_ARROW, hits_of_day
from serving.store.schema import CLEAN_INPUTS

log = logging.getLogger(__name__)


class ClosedDayStore(Protocol):
    def loaded(self) -> dict[dt.date, str]:
        """Day -> the run it holds."""

    def replace_day(self, day: dt.date, hits: pa.Table, run: str) -> None:
        """Make ``hits`` the day's rows (the run's), replacing any earlier."""

    def site_events(self) -> dict[str, int]:
        """Events per site over the days it holds (what the embedded store plans queries with)."""

    def delete_site(self, site: str, before_ms: int) -> object:
        """Erase the site's rows from before ``before_ms`` (a purge request)."""


class LiveStore(Protocol):
    def delete_site(self, site: str, before_ms: int) -> int:
        """Erase the site's real-time rows from before ``before_ms``."""


class LakeSync:
    def __init__(
        self,
        storage: Storage,
        store: ClosedDayStore,
        interval_s: float = 5.0,
        live: LiveStore | None = None,
        numbers: restatements.DayNumbers | None = None,
    ):
        """``live``: the real-time store purges erase from too (none: ``store`` holds both).
        ``numbers``: what the serving process answers for a day per site, logged before and
        after each load (serving.store.restatements; none: no log)."""
        self.storage = storage
        self.store = store
        self.live = live
        self.numbers = numbers
        self.interval_s = interval_s
        self.watermark: dt.date | None = None  # every closed day up to it is in the store
        self.site_events: dict[str, int] = store.site_events()  # events per site in the store
        self._fingerprints: dict[str, tuple[tuple[int, int], str]] = {}  # summary -> (stamp, fingerprint)
        self.loaded_events = 0
        self.load_seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lake-sync", daemon=True)

    def runs(self) -> dict[dt.date, str]:
        """Closed day -> its run's fingerprint (the summary changes with every run of the day).
        A summary is read again only when its stamp (size, modification time) changed: a sync
        every few seconds must not read a year of summaries each time."""
        known, self._fingerprints, out = self._fingerprints, {}, {}
        for path, stamp in self.storage.file_stamps(f"{layout.VIEWS}/_runs").items():
            day = layout.run_summary_day(path)
            if day is None:
                continue
            cached = known.get(path)
            if cached is None or cached[0] != stamp:
                cached = (stamp, hashlib.sha256(self.storage.read(path)).hexdigest()[:16])
            self._fingerprints[path] = cached
            out[day] = cached[1]
        return out

    def apply_purges(self) -> list[str]:
        """Erase each site a purge request names (batch_layer.purge) from the stores, then drop
        the request: applied once, so a site created again later keeps its new traffic."""
        done = []
        for path in self.storage.list_files(layout.PURGES):
            request = json.loads(self.storage.read(path))
            site, before_ms = request["site"], int(request["requested_ms"])
            try:
                self.store.delete_site(site, before_ms)
                if self.live is not None:
                    self.live.delete_site(site, before_ms)
            except Exception as exc:  # the store refused or is down: the request stays, tried again
                log.error("%s not erased from the stores (%s); retried at the next sync", site, exc)
                continue
            self.storage.delete(path)
            self.site_events = self.store.site_events()
            log.info("erased %s from the stores (rows before %d)", site, before_ms)
            done.append(site)
        return done

    def sync_once(self) -> list[dt.date]:
        """Load what is missing or stale; returns the days loaded."""
        self.apply_purges()
        lake_watermark = read_watermark(self.storage)
        if lake_watermark is None:
            return []
        runs = {day: run for day, run in self.runs().items() if day <= lake_watermark}
        loaded = self.store.loaded()
        done = []
        for day in sorted(runs):
            if loaded.get(day) == runs[day]:
                continue
            try:
                self.load_day(day, runs[day], rerun=day in loaded)
            except Exception as exc:  # the store refused or is down: the days after wait with it
                log.error("%s not loaded into the store (%s); retried at the next sync", day, exc)
                break
            loaded[day] = runs[day]
            done.append(day)
        if done:
            self.site_events = self.store.site_events()
        missing = [day for day in runs if day not in loaded]
        self.watermark = min(missing) - dt.timedelta(days=1) if missing else lake_watermark
        return done

    def load_day(self, day: dt.date, run: str, rerun: bool = False) -> int:
        """Load a closed day's run; ``rerun``: the store holds an earlier run of it."""
        started = time.monotonic()
        parts = [p for p in self.storage.list_files(layout.day_dir(layout.CLEAN, day)) if p.endswith(".parquet")]
        tables = [pq.read_table(io.BytesIO(self.storage.read(p)), columns=CLEAN_INPUTS) for p in parts]
        hits = hits_of_day(pa.concat_tables(tables), day) if tables else HITS_ARROW.empty_table()
        before = self._numbers(day, final=rerun)
        self.store.replace_day(day, hits, run)
        if before:
            try:
                source = "final" if rerun else "live"
                restatements.record(self.storage, day, before, self._numbers(day, final=True), source, run)
            except Exception:  # the log is not worth a day not loaded
                log.exception("%s: the restatement log was not written", day)
        seconds = time.monotonic() - started
        self.loaded_events += hits.num_rows
        self.load_seconds += seconds
        log.info("loaded %s into the store: %d events in %.2f s", day, hits.num_rows, seconds)
        return hits.num_rows

    def _numbers(self, day: dt.date, final: bool) -> dict[str, tuple[int, int]]:
        if self.numbers is None:
            return {}
        try:
            return self.numbers(day, final)
        except Exception:  # the store's answer is for the log only
            log.exception("%s: the numbers for the restatement log are unavailable", day)
            return {}

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
