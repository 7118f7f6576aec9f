"""The dashboard (the Redash role): static pages whose script reads the Stats API, so every number
on screen is one the API gives. No CDN, no chart library: the time series is drawn as inline SVG.

    /                       the sites
    /sites/{site}           top-line numbers, time series, breakdowns, live visitors, date range
    /sites/{site}/snippet   the embed snippet for the site
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from serving.registry import Registry

STATIC = Path(__file__).resolve().parent / "static"


def install_dashboard(app: FastAPI, registry: Registry, collector_url: str) -> None:
    router = APIRouter(tags=["dashboard"])

    @router.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @router.get("/sites/{site}", include_in_schema=False)
    def site_page(site: str) -> FileResponse:  # noqa: ARG001 (the page reads the site from its URL)
        return FileResponse(STATIC / "site.html")

    @router.get("/sites/{site}/snippet", include_in_schema=False)
    def snippet_page(site: str) -> FileResponse:  # noqa: ARG001
        return FileResponse(STATIC / "snippet.html")

    @router.get("/api/sites", summary="Registered sites (names and access, no stats)")
    def list_sites() -> list[dict]:
        return [{"domain": s.domain, "public": s.public} for s in registry.list_sites()]

    @router.get("/api/config", summary="What the dashboard needs to know about this deployment")
    def config() -> dict:
        return {"collector_url": collector_url}

    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
