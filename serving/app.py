"""`pixel serve`: the Stats API (v1 and v2) and the dashboard over the analytics store (closed
days, loaded by this process from the lake) and the real-time store (open days); with the
embedded real-time store, also the ingestion of pixel.agg into it (this process owns its file, as
Druid's indexing service owns its segments).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI

from core.lake.storage import open_storage
from core.settings import Settings
from events.days import day_bounds
from serving.analytics.engine import Analytics
from serving.analytics.router import filter_schema, v2_router
from serving.batch.rejected import rejected
from serving.dashboard import install_dashboard
from serving.metrics import install_metrics
from serving.openapi import install_openapi
from serving.query import QueryError, StoreUnavailable
from serving.ratelimit import install_rate_limits
from serving.realtime import open_realtime_store
from serving.registry import Registry
from serving.stats_api import (
    Unauthorized,
    check_access,
    query_error_response,
    stats_router,
    unauthorized_response,
    unavailable_response,
)
from serving.store import restatements
from serving.store.sync import LakeSync

log = logging.getLogger(__name__)


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _closed_days(settings: Settings, storage, live, site_events):
    """Where closed days are loaded and answered: (the store LakeSync fills, the engine's reader).
    With Druid both views live in its datasource; else in the embedded store's file.
    ``site_events``: events per site in the store (LakeSync keeps them)."""
    if settings.realtime_store == "druid":
        from serving.druid.batch_ingest import DruidDays, Overlord, hdfs_input_root
        from serving.druid.closed import DruidClosed

        days = DruidDays(
            Overlord(settings.druid_overlord_url),
            storage,
            hdfs_input_root(settings.storage_root, settings.druid_input_root),
            settings.data_dir / "store" / "druid-days.json",
        )
        return days, DruidClosed(live)
    from serving.analytics.closed import EmbeddedClosed
    from serving.store.embedded import EmbeddedStore

    hits = EmbeddedStore(settings.store_db, memory_limit=settings.store_memory_limit)
    return hits, EmbeddedClosed(hits, settings.query_timeout_seconds, site_events=site_events)


def day_numbers(closed_totals, live) -> restatements.DayNumbers:
    """What the API answers for a day, per site (pageviews, visitors): ``closed_totals(day)`` once
    the closed days' store holds it, else the real-time store's (Druid: None, one datasource
    holds both, the real-time store answers)."""

    def numbers(day: dt.date, final: bool) -> dict[str, tuple[int, int]]:
        if final and closed_totals is not None:
            return closed_totals(day)
        return {site: (c.pageviews, c.visitors) for site, c in live.site_totals(*day_bounds(day)).items()}

    return numbers


def create_app(settings: Settings, ingest: bool = True) -> FastAPI:
    """The serving app. ``ingest``: run the embedded store's pixel.agg ingestor in this process."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    registry = Registry(settings.registry_database_url)
    store = open_realtime_store(settings)
    storage = open_storage(settings.storage_root, settings.hdfs_user)
    loaded_days, closed = _closed_days(settings, storage, store, lambda: sync.site_events)
    embedded = settings.realtime_store == "embedded"
    live = store if embedded else None  # Druid: one datasource holds both
    numbers = day_numbers(loaded_days.day_totals if embedded else None, store)
    sync = LakeSync(storage, loaded_days, settings.store_sync_seconds, live=live, numbers=numbers)
    analytics = Analytics(closed, lambda: sync.watermark, store, goals=registry.goals)
    ingestor = None
    if ingest and settings.realtime_store == "embedded":
        from serving.realtime.ingest import AggIngestor

        ingestor = AggIngestor(settings, store)

    def ingested() -> int | None:
        return ingestor.ingested if ingestor is not None else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        thread = None
        sync.start()
        if ingestor is not None:
            thread = threading.Thread(target=ingestor.run, name="agg-ingestor", daemon=True)
            thread.start()
            log.info("ingesting %s into %s", settings.agg_topic, settings.realtime_db)
        yield
        if ingestor is not None:
            ingestor.stop()
            thread.join(timeout=10)
        sync.stop()

    app = FastAPI(
        title="pixel stats",
        version="0.1.0",
        lifespan=lifespan,
        description="Plausible-compatible Stats API v1 over the batch and real-time views.",
    )
    restated = lambda site, first, last: restatements.read(storage, site, first, last)  # noqa: E731
    filtered_out = lambda site, first, last: rejected(storage, site, first, last)  # noqa: E731
    app.include_router(
        stats_router(
            analytics, today=utc_today, can_read=registry.can_read, restatements=restated, rejected=filtered_out
        )
    )
    access = lambda site, authorization: check_access(registry.can_read, site, authorization)  # noqa: E731
    app.include_router(v2_router(analytics, today=utc_today, site_access=access))
    app.add_exception_handler(QueryError, query_error_response)
    app.add_exception_handler(Unauthorized, unauthorized_response)
    app.add_exception_handler(StoreUnavailable, unavailable_response)
    install_dashboard(app, registry, settings.collector_url, analytics, utc_today)
    install_metrics(
        app, lambda: sync.watermark, ingested, lambda: ingestor.held_back_seconds() if ingestor is not None else 0.0
    )
    install_rate_limits(
        app,
        settings.api_rate_per_hour,
        settings.api_rate_burst,
        settings.trusted_proxies,
        dashboard=(settings.dashboard_rate_per_hour, settings.dashboard_rate_burst),
    )
    install_openapi(app, {"V2Filter": filter_schema()})

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict:
        return {
            "status": "ok",
            "batch_watermark": str(sync.watermark or ""),  # closed days the API answers as final
            "realtime_store": settings.realtime_store,
            "ingested": ingested(),
        }

    return app
