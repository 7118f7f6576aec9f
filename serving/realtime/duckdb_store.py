"""The embedded real-time store: DuckDB, one file, the speed rows rolled up by minute.

The rows keep the speed layer's finest grain (events.aggregate: one per site and combination of
property values), so the open days answer any filter and breakdown over them (``aggregate``).
Ingestion is idempotent per Kafka offset: the rolled-up rows and the consumer's next offsets
are written in one transaction (as Druid's Kafka indexing keeps offsets with its segments), so
a crash between the two can't double-count or lose a window.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from pathlib import Path

import duckdb
import pyarrow as pa

from events.aggregate import AGG_SCHEMA
from events.properties import LIVE_COLUMNS, LIVE_PROPERTIES
from events.schema import arrow_schema, sql_columns
from events.sketches import estimate_and_merge, merge
from serving.realtime.interface import (
    MINUTE,
    Bucket,
    Count,
    Ranked,
    check_dimension,
    check_interval,
    realtime_range,
    sum_counts,
)

# The pixel.agg rows rolled up by minute: AGG_SCHEMA with the minute for the window.
MINUTE_SCHEMA = [("minute", "long"), *((n, t) for n, t in AGG_SCHEMA if n not in ("window_start", "window_end"))]
KEY = ["minute", "site", "is_bot", *LIVE_COLUMNS]
_KEY_SQL = ", ".join(f'"{k}"' for k in KEY)
_EXISTING = ", ".join(f'l."{k}"' for k in KEY)
_MINUTE_ARROW = arrow_schema(MINUTE_SCHEMA)
# Time labels of a row's minute, as the analytics store writes them (serving.analytics.sql).
LIVE_TIME_SQL = {
    "hour": "strftime(date_trunc('hour', epoch_ms(minute)), '%Y-%m-%d %H:00:00')",
    "day": "strftime(epoch_ms(minute)::DATE, '%Y-%m-%d')",
    "week": "strftime(date_trunc('week', epoch_ms(minute)::DATE), '%Y-%m-%d')",
    "month": "strftime(date_trunc('month', epoch_ms(minute)::DATE), '%Y-%m-%d')",
}
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS live_minute (
  {sql_columns(MINUTE_SCHEMA, "duckdb", not_null=True)},
  PRIMARY KEY ({_KEY_SQL})
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
        rolled: dict[tuple, list] = defaultdict(lambda: [0, 0, []])
        for r in rows:
            key = (
                r["window_start"] // MINUTE * MINUTE,
                r["site"],
                bool(r["is_bot"]),
                *(r[c] or "" for c in LIVE_COLUMNS),
            )
            entry = rolled[key]
            entry[0] += r["pageviews"]
            entry[1] += r["events"]
            entry[2].append(r["visitors_hll"])
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

    def site_totals(self, start: int, end: int) -> dict[str, Count]:
        """Every site's people in [start, end): what the store answers for each (restatements)."""
        rows = self._rows(
            "SELECT site, sum(pageviews), sum(events), list(visitors_hll) FROM live_minute "
            "WHERE minute >= ? AND minute < ? AND NOT is_bot GROUP BY site",
            [start, end],
        )
        return {site: _count(pageviews, events, sketches) for site, pageviews, events, sketches in rows}

    def delete_site(self, site: str, before_ms: int) -> int:
        """Erase the site's minutes before ``before_ms`` (a purge); the rows removed."""
        with self.lock:
            return self.db.execute(
                "DELETE FROM live_minute WHERE site = ? AND minute < ?", [site, before_ms]
            ).fetchone()[0]

    def _merge(self, rolled: dict[tuple, list]) -> None:
        keys = list(rolled)
        incoming = pa.table(
            {name: [k[i] for k in keys] for i, name in enumerate(KEY)},
            schema=pa.schema([_MINUTE_ARROW.field(n) for n in KEY]),
        )
        self.db.register("incoming", incoming)
        existing = self.db.execute(
            f"SELECT {_EXISTING}, l.pageviews, l.events, l.visitors_hll "
            f"FROM live_minute l JOIN incoming USING ({_KEY_SQL})"
        ).fetchall()
        self.db.unregister("incoming")
        for row in existing:
            entry = rolled[tuple(row[: len(KEY)])]
            entry[0] += row[len(KEY)]
            entry[1] += row[len(KEY) + 1]
            entry[2].append(row[len(KEY) + 2])
        merged = {name: [k[i] for k in keys] for i, name in enumerate(KEY)}
        merged["pageviews"] = [rolled[k][0] for k in keys]
        merged["events"] = [rolled[k][1] for k in keys]
        merged["visitors_hll"] = [merge(rolled[k][2]) if len(rolled[k][2]) > 1 else rolled[k][2][0] for k in keys]
        self.db.register("merged", pa.table({n: merged[n] for n, _ in MINUTE_SCHEMA}, schema=_MINUTE_ARROW))
        self.db.execute("INSERT OR REPLACE INTO live_minute SELECT * FROM merged")
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

    def aggregate(
        self, site: str, start: int, end: int, groups: list[str] = (), where: str = "", params: list = ()
    ) -> list[tuple]:
        """People's rows of a site in [start, end) grouped by ``groups`` (SQL over the columns:
        the caller's closed set) where ``where`` holds (SQL with ``params``): per group, its
        values and a Count (pageviews, visitors from the merged sketch, events)."""
        select = [f"{g} AS g{i}" for i, g in enumerate(groups)]
        sql = (
            f"SELECT {', '.join([*select, 'sum(pageviews)', 'sum(events)', 'list(visitors_hll)'])} FROM live_minute "
            f"WHERE site = ? AND minute >= ? AND minute < ? AND NOT is_bot{' AND ' + where if where else ''}"
        )
        if groups:
            sql += f" GROUP BY {', '.join(f'g{i}' for i in range(len(groups)))}"
        rows = self._rows(sql, [site, start, end, *params])
        n = len(groups)
        return [(*row[:n], _count(row[n], row[n + 1], row[n + 2])) for row in rows if row[n] is not None]

    def answer(self, site: str, start: int, end: int, groups: list[str], filters=None) -> list[tuple]:
        """``aggregate`` for a question: ``groups`` are property names (events.properties.
        LIVE_PROPERTIES) or time grains (hour, day, week, month); ``filters`` a filter tree
        (serving.analytics.query), compiled with bound values."""
        from serving.analytics.sql import filter_sql

        exprs = [LIVE_TIME_SQL[g] if g in LIVE_TIME_SQL else f'"{LIVE_PROPERTIES[g].column}"' for g in groups]
        params: list = []
        where = filter_sql(filters, params) if filters is not None else ""
        return self.aggregate(site, start, end, exprs, where, params)

    def totals(self, site: str, start: int, end: int) -> Count:
        rows = self.aggregate(site, start, end)
        return rows[0][0] if rows else sum_counts([])

    def timeseries(self, site: str, start: int, end: int, interval_ms: int) -> list[Bucket]:
        check_interval(interval_ms)
        rows = self.aggregate(site, start, end, ["minute"])
        buckets: dict[int, list] = defaultdict(list)
        for minute, count in rows:
            buckets[start + (minute - start) // interval_ms * interval_ms].append(count)
        return [Bucket(b, sum_counts(buckets.get(b, []))) for b in range(start, end, interval_ms)]

    def top(self, site: str, dimension: str, start: int, end: int, limit: int = 10) -> list[Ranked]:
        check_dimension(dimension)
        rows = self.aggregate(site, start, end, [f'"{dimension}"'])
        ranked = sorted(rows, key=lambda r: (-r[1].events, r[0]))[:limit]
        return [Ranked(value, count) for value, count in ranked]

    def realtime_visitors(self, site: str, now_ms: int, minutes: int = 5) -> int:
        return self.totals(site, *realtime_range(now_ms, minutes)).visitors


def _count(pageviews, events, sketches: list[str]) -> Count:
    visitors, merged = estimate_and_merge(sketches)
    return Count(int(pageviews or 0), visitors, merged, int(events or 0))
