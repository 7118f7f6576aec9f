"""The embedded real-time store: DuckDB, one file, rolled up by minute.

Ingestion is idempotent per Kafka offset: the rolled-up rows and the consumer's next offsets
are written in one transaction (as Druid's Kafka indexing keeps offsets with its segments), so
a crash between the two can't double-count or lose a window.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from pathlib import Path

import duckdb
import pandas as pd

from events.aggregate import AGG_SCHEMA
from events.schema import sql_columns
from events.sketches import estimate_and_merge, merge
from serving.realtime.interface import (
    MINUTE,
    Bucket,
    Count,
    Ranked,
    check_dimension,
    check_interval,
    realtime_range,
)

# The pixel.agg rows rolled up by minute: AGG_SCHEMA with the minute for the window.
MINUTE_SCHEMA = [("minute", "long"), *((n, t) for n, t in AGG_SCHEMA if n not in ("window_start", "window_end"))]
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS agg_minute (
  {sql_columns(MINUTE_SCHEMA, "duckdb", not_null=True)},
  PRIMARY KEY (site, dimension, minute, value)
);
CREATE TABLE IF NOT EXISTS consumer_offsets (
  topic VARCHAR NOT NULL, kafka_partition INTEGER NOT NULL, next_offset BIGINT NOT NULL,
  PRIMARY KEY (topic, kafka_partition)
);
"""


class DuckDBStore:
    def __init__(self, path: Path | str = ":memory:", read_only: bool = False):
        """``read_only``: query a store another process (``pixel serve``) may be writing.
        DuckDB allows one writing process per file, so only the ingestor opens it writable."""
        if read_only:
            if not Path(path).exists():
                raise FileNotFoundError(f"no real-time store at {path}: start `pixel serve` (or `pixel up`) first")
            self.db = duckdb.connect(str(path), read_only=True)
        else:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.db = duckdb.connect(str(path))
            self.db.execute(SCHEMA)
        self.lock = threading.Lock()  # one connection: ingestion and queries take turns

    # --- ingestion -------------------------------------------------------------------------------
    def ingest(self, rows: list[dict], offsets: dict[tuple[str, int], int] | None = None) -> int:
        """Roll rows (AGG_SCHEMA dicts) up by minute and merge them into the store; record the
        consumer's next offsets in the same transaction. Returns the number of minute rows touched."""
        rolled: dict[tuple, list] = defaultdict(lambda: [0, []])
        for r in rows:
            key = (r["window_start"] // MINUTE * MINUTE, r["site"], r["dimension"], r["value"])
            rolled[key][0] += r["pageviews"]
            rolled[key][1].append(r["visitors_hll"])
        with self.lock:
            self.db.begin()
            try:
                if rolled:
                    self._merge(rolled)
                for (topic, partition), next_offset in (offsets or {}).items():
                    self.db.execute(
                        "INSERT OR REPLACE INTO consumer_offsets VALUES (?, ?, ?)", [topic, partition, next_offset]
                    )
                self.db.commit()
            except Exception:
                self.db.rollback()
                raise
        return len(rolled)

    def _merge(self, rolled: dict[tuple, list]) -> None:
        incoming = pd.DataFrame(
            [(*k, v[0]) for k, v in rolled.items()], columns=["minute", "site", "dimension", "value", "pageviews"]
        )
        self.db.register("incoming", incoming)
        existing = self.db.execute(
            "SELECT a.minute, a.site, a.dimension, a.value, a.pageviews, a.visitors_hll FROM agg_minute a "
            "JOIN incoming i USING (minute, site, dimension, value)"
        ).fetchall()
        self.db.unregister("incoming")
        for minute, site, dimension, value, pageviews, hll in existing:
            entry = rolled[(minute, site, dimension, value)]
            entry[0] += pageviews
            entry[1].append(hll)
        merged = pd.DataFrame(
            [(*k, v[0], merge(v[1]) if len(v[1]) > 1 else v[1][0]) for k, v in rolled.items()],
            columns=["minute", "site", "dimension", "value", "pageviews", "visitors_hll"],
        )
        self.db.register("merged", merged)
        self.db.execute("INSERT OR REPLACE INTO agg_minute SELECT * FROM merged")
        self.db.unregister("merged")

    def offsets(self, topic: str) -> dict[int, int]:
        with self.lock:
            rows = self.db.execute(
                "SELECT kafka_partition, next_offset FROM consumer_offsets WHERE topic = ?", [topic]
            ).fetchall()
        return dict(rows)

    # --- queries (RealtimeStore) ---------------------------------------------------------------
    def _rows(self, sql: str, params: list) -> list[tuple]:
        with self.lock:
            return self.db.execute(sql, params).fetchall()

    def totals(self, site: str, start: int, end: int) -> Count:
        rows = self._rows(
            "SELECT pageviews, visitors_hll FROM agg_minute WHERE site = ? AND dimension = 'total' "
            "AND minute >= ? AND minute < ?",
            [site, start, end],
        )
        return _count(rows)

    def timeseries(self, site: str, start: int, end: int, interval_ms: int) -> list[Bucket]:
        check_interval(interval_ms)
        rows = self._rows(
            "SELECT minute, pageviews, visitors_hll FROM agg_minute WHERE site = ? "
            "AND dimension = 'total' AND minute >= ? AND minute < ? ORDER BY minute",
            [site, start, end],
        )
        buckets: dict[int, list] = defaultdict(list)
        for minute, pageviews, hll in rows:
            buckets[start + (minute - start) // interval_ms * interval_ms].append((pageviews, hll))
        return [Bucket(b, _count(buckets.get(b, []))) for b in range(start, end, interval_ms)]

    def top(self, site: str, dimension: str, start: int, end: int, limit: int = 10) -> list[Ranked]:
        check_dimension(dimension)
        ranked = self._rows(
            "SELECT value, SUM(pageviews) AS pv FROM agg_minute WHERE site = ? AND dimension = ? "
            "AND minute >= ? AND minute < ? GROUP BY value ORDER BY pv DESC, value LIMIT ?",
            [site, dimension, start, end, limit],
        )
        if not ranked:
            return []
        values = [v for v, _ in ranked]
        sketches: dict[str, list[str]] = defaultdict(list)
        for value, hll in self._rows(
            "SELECT value, visitors_hll FROM agg_minute WHERE site = ? AND dimension = ? AND minute >= ? "
            "AND minute < ? AND list_contains(?, value)",
            [site, dimension, start, end, values],
        ):
            sketches[value].append(hll)
        return [Ranked(v, Count(int(pv), *estimate_and_merge(sketches[v]))) for v, pv in ranked]

    def realtime_visitors(self, site: str, now_ms: int, minutes: int = 5) -> int:
        return self.totals(site, *realtime_range(now_ms, minutes)).visitors


def _count(rows: list[tuple]) -> Count:
    return Count(sum(int(pv) for pv, _ in rows), *estimate_and_merge(hll for _, hll in rows))
