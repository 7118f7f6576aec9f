"""Prometheus metrics of `pixel serve`: API requests and latency per route, the embedded store's
ingestion, and how far the batch watermark lags (a nightly job that stopped closing days)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest


def _age_seconds(watermark: dt.date | None) -> float:
    if watermark is None:
        return -1
    closed_until = dt.datetime.combine(watermark + dt.timedelta(days=1), dt.time(), dt.UTC)
    return (dt.datetime.now(dt.UTC) - closed_until).total_seconds()


def install_metrics(
    app: FastAPI,
    watermark: Callable[[], dt.date | None],
    ingested: Callable[[], int | None],
    held_back: Callable[[], float] = lambda: 0.0,
) -> None:
    registry = CollectorRegistry()
    requests = Counter("pixel_serving_requests_total", "API requests", ["route", "status"], registry=registry)
    latency = Histogram(
        "pixel_serving_request_seconds",
        "API request latency",
        ["route"],
        registry=registry,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    )
    Gauge(
        "pixel_serving_ingested_rows", "pixel.agg rows ingested into the embedded store since start", registry=registry
    ).set_function(lambda: ingested() or 0)
    Gauge(
        "pixel_serving_agg_held_back_seconds",
        "Longest time a pixel.agg partition's readable end has stayed below its last row: above a "
        "minute, a speed-layer transaction is left open and the real-time view stopped there",
        registry=registry,
    ).set_function(held_back)
    Gauge(
        "pixel_batch_watermark_lag_days",
        "Days between today (UTC) and the last closed day (-1: none)",
        registry=registry,
    ).set_function(lambda: (dt.datetime.now(dt.UTC).date() - wm).days if (wm := watermark()) else -1)
    Gauge(
        "pixel_batch_watermark_age_seconds",
        "Seconds since the end of the last closed day (-1: none); a nightly run keeps it under ~27 h",
        registry=registry,
    ).set_function(lambda: _age_seconds(watermark()))

    @app.middleware("http")
    async def measure(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")  # the template (/sites/{site}), never the raw path
        requests.labels(name, str(response.status_code)).inc()
        latency.labels(name).observe(time.perf_counter() - started)
        return response

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
