"""The real-time store (the Druid role): pixel.agg rows, rolled up by minute, and the query
interface the serving layer uses. Implementations: embedded DuckDB (default) and Druid."""

from core.settings import Settings
from serving.realtime.interface import RealtimeStore


def open_realtime_store(settings: Settings, read_only: bool = False) -> RealtimeStore:
    """The configured real-time store. ``read_only`` for tools beside a running `pixel serve`."""
    if settings.realtime_store == "druid":
        from serving.realtime.druid_store import DruidStore

        return DruidStore(host=settings.druid_host, port=settings.druid_port, timeout_s=settings.query_timeout_seconds)
    from serving.realtime.duckdb_store import DuckDBStore

    return DuckDBStore(settings.realtime_db, read_only=read_only)
