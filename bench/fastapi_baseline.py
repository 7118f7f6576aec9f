"""Baseline for bench/collector_http.py: the same per-hit work as the collector, served by an
ordinary FastAPI route (what one would write first). Not used by the product."""

from __future__ import annotations

from fastapi import Request, Response

from core.settings import Settings
from pixel_api.app import GIF, create_fastapi
from pixel_api.collector import Collector, request_headers


def create_app():
    collector = Collector(Settings())
    app = create_fastapi(collector)

    @app.get("/p.gif")
    async def pixel(request: Request) -> Response:
        client = request.scope.get("client")
        collector.record_query(
            request.scope["query_string"], request_headers(request.scope["headers"]), client[0] if client else ""
        )
        collector.handoff.tallies.hits["gif"] += 1
        return Response(GIF, media_type="image/gif", headers={"cache-control": "no-store"})

    return app
