"""The embedded analytics store: DuckDB, one file, the closed days' hits (serving.store.schema)
and their per-day rollups (serving.store.rollup).

Each day is loaded whole in one transaction (a re-run day replaces its rows), its rows sorted
by site and time: DuckDB's per-row-group min/max statistics then skip the row groups of other
sites, so one site's question reads about one row group per day, however many sites there are.
Queries run on their own cursors, bounded in time (``timeout_s``: interrupted, then an error).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from pathlib import Path

import duckdb
import pyarrow as pa

from events.schema import sql_columns
from serving.query import StoreUnavailable
from serving.store import rollup
from serving.store.schema import HITS_SCHEMA


class QueryTimeout(StoreUnavailable):
    """A query ran past its time budget and was interrupted."""


class EmbeddedStore:
    def __init__(self, path: Path | str = ":memory:", memory_limit: str = "512MB", threads: int = 2):
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = duckdb.connect(str(path), config={"memory_limit": memory_limit, "threads": threads})
        self.db.execute(f"CREATE TABLE IF NOT EXISTS hits ({sql_columns(HITS_SCHEMA, 'duckdb')})")
        self.db.execute(f"CREATE TABLE IF NOT EXISTS {rollup.TABLE} ({sql_columns(rollup.ROLLUP_SCHEMA, 'duckdb')})")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS loaded_days (day DATE PRIMARY KEY, run VARCHAR NOT NULL, "
            "rows BIGINT NOT NULL, loaded_at TIMESTAMP NOT NULL)"
        )
        self._write = threading.Lock()

    # --- loading ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _transaction(self):
        """One writer at a time, all or nothing: a query sees the store before or after."""
        with self._write:
            cursor = self.db.cursor()
            cursor.begin()
            try:
                yield cursor
                cursor.commit()
            except Exception:
                cursor.rollback()
                raise
            finally:
                cursor.close()

    def replace_day(self, day: dt.date, hits: pa.Table, run: str) -> None:
        """Make ``hits`` the rows of ``day`` (one transaction: a query sees the old day or the new)."""
        with self._transaction() as cursor:
            cursor.execute("DELETE FROM hits WHERE day = ?", [day])
            cursor.execute(f"DELETE FROM {rollup.TABLE} WHERE day = ?", [day])
            cursor.register("incoming", hits)
            cursor.execute("INSERT INTO hits SELECT * FROM incoming")
            cursor.unregister("incoming")
            sql, binds = rollup.insert_sql()
            cursor.execute(sql, [day] * binds)
            cursor.execute("INSERT OR REPLACE INTO loaded_days VALUES (?, ?, ?, now())", [day, run, hits.num_rows])

    def loaded(self) -> dict[dt.date, str]:
        """Day -> the run it was loaded from."""
        return dict(self.db.cursor().execute("SELECT day, run FROM loaded_days").fetchall())

    def site_events(self) -> dict[str, int]:
        """Events per site over every loaded day (from the rollups' totals rows)."""
        cursor = self.db.cursor()
        try:
            sql = f"SELECT site, sum(events) FROM {rollup.TABLE} WHERE property = ? GROUP BY site"
            return {site: int(n) for site, n in cursor.execute(sql, [rollup.TOTAL]).fetchall()}
        finally:
            cursor.close()

    def day_totals(self, day: dt.date) -> dict[str, tuple[int, int]]:
        """Each site's (pageviews, visitors) of a loaded day, as the API answers them (the
        rollups' totals rows)."""
        sql = f"SELECT site, pageviews, visitors FROM {rollup.TABLE} WHERE day = ? AND property = ?"
        return {site: (int(pv), int(v)) for site, pv, v in self.query(sql, [day, rollup.TOTAL])}

    def delete_site(self, site: str, before_ms: int) -> int:
        """Erase the site's rows of the days before ``before_ms``'s (a purge: the days after hold
        traffic of a site created again); the hits removed."""
        before = dt.datetime.fromtimestamp(before_ms / 1000, dt.UTC).date()
        with self._transaction() as cursor:
            cursor.execute(f"DELETE FROM {rollup.TABLE} WHERE site = ? AND day < ?", [site, before])
            return cursor.execute("DELETE FROM hits WHERE site = ? AND day < ?", [site, before]).fetchone()[0]

    # --- queries ---------------------------------------------------------------------------------
    def query(self, sql: str, params: list, timeout_s: float = 5.0) -> list[tuple]:
        """Run one read query with bound parameters; QueryTimeout past ``timeout_s``."""
        cursor = self.db.cursor()
        timer = threading.Timer(timeout_s, cursor.interrupt)
        timer.start()
        try:
            return cursor.execute(sql, params).fetchall()
        except duckdb.InterruptException:
            raise QueryTimeout(f"the query took more than {timeout_s:g} s and was stopped") from None
        finally:
            timer.cancel()
            cursor.close()

    def close(self) -> None:
        self.db.close()
