"""Read the nightly job's views (``views/daily/date=D/``, ``views/sessions/date=D/``) through the
storage interface, so file:// and hdfs:// roots read the same way, without Spark.

A closed day only changes when the batch job re-runs it (at night, or a backfill), so the serving
layer keeps each day's rows in memory for ``ttl_s`` seconds instead of reading Parquet (over
WebHDFS, in production) on every API request."""

from __future__ import annotations

import datetime as dt
import io
import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq

from core.lake import layout
from core.lake.storage import Storage
from core.lake.watermark import read_watermark
from serving.realtime.interface import Count


class BatchViews:
    def __init__(self, storage: Storage, ttl_s: float = 60.0):
        self.storage = storage
        self.ttl_s = ttl_s
        self._cache: dict[tuple, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def _cached(self, key: tuple, load, ttl_s: float):
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < ttl_s:
            return hit[1]
        value = load()
        if value is not None:  # a day not closed yet is looked for again on the next request
            with self._lock:
                self._cache[key] = (now, value)
        return value

    def watermark(self) -> dt.date | None:
        # Short-lived: a day the job just closed must not be asked of a cache that missed it.
        return self._cached(("watermark",), lambda: read_watermark(self.storage), min(self.ttl_s, 2.0))

    def rows(self, view: str, day: dt.date) -> list[dict]:
        """One day of a view as row dicts ([] when the day was never closed); a closed day is
        cached for ttl_s (a re-run of that day shows after at most that long)."""

        def load():
            table = self.table(view, day)
            return table.to_pylist() if table is not None else None

        return self._cached((view, day), load, self.ttl_s) or []

    def table(self, view: str, day: dt.date) -> pa.Table | None:
        """One day of a view (``daily`` or ``sessions``); None when the day was never closed."""
        parts = [p for p in self.storage.list_files(layout.view_dir(view, day)) if p.endswith(".parquet")]
        if not parts:
            return None
        return pa.concat_tables(pq.read_table(io.BytesIO(self.storage.read(p))) for p in parts)

    def site_totals(self, day: dt.date) -> dict[str, Count]:
        """Per site: pageviews, exact visitors and the visitors sketch of the day (humans only)."""
        return {r["site"]: count_of(r) for r in self.rows("daily", day) if r["dimension"] == "total"}


def count_of(row: dict) -> Count:
    """A daily-view row's numbers."""
    return Count(row["pageviews"], row["visitors"], row["visitors_hll"])
