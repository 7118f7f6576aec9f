"""Which ``matches`` patterns the API takes: valid RE2 expressions (DuckDB's regular expressions,
linear time, so no pattern can make a query backtrack for ever). Druid matches with Java's
regular expressions, which can; its queries are bounded by Druid's query timeout as well."""

from __future__ import annotations

import threading

import duckdb

_db: duckdb.DuckDBPyConnection | None = None
_lock = threading.Lock()


def re2_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a valid RE2 expression, or None."""
    global _db
    with _lock:
        if _db is None:
            _db = duckdb.connect(":memory:")
        cursor = _db.cursor()
    try:
        cursor.execute("SELECT regexp_matches('', ?)", [pattern])
        return None
    except duckdb.Error as exc:
        return str(exc).split("\n")[0][:200]
    finally:
        cursor.close()
