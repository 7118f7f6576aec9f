"""The dashboard: static pages whose script reads the Stats API, so every number on screen is one
the API gives. No CDN, no chart or map library: the chart and the world map are inline SVG, the
map's countries from a pinned npm package (infra.mapdata).

    /                           the sites, each with its visitors today and a 7-day sparkline
    /sites/{site}?period=&date=&filters=
                                a view: top-line numbers against the previous period, the chart,
                                the panels; filters in the Stats API v1 syntax; period=realtime:
                                the last 30 minutes
    /sites/{site}/snippet       the embed snippet for the site

    GET /api/sites/{site}/export?...   the view as a ZIP of CSVs (serving.dashboard.export)
    GET /api/sites/{site}/query?...    the view as a Stats API v2 query
    GET /api/sites/{site}/props?...    the custom property keys of the view's events
    GET /api/sites/{site}/realtime     the last 30 minutes (serving.dashboard.realtime)
"""

from __future__ import annotations

import datetime as dt
import pathlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Path, Query
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from infra.mapdata import SERVED, map_dir
from serving.analytics.engine import Analytics
from serving.dashboard.export import CHART_INTERVALS, view_files, view_query, view_zip
from serving.dashboard.panels import CHART_METRICS, PROPS_TAB, ROWS, TOPLINE, panels_config
from serving.dashboard.realtime import last_minutes
from serving.registry import Registry
from serving.stats_api import V1Stats, check_access

STATIC = pathlib.Path(__file__).resolve().parent / "static"


@dataclass(frozen=True)
class View:
    site: str
    period: str
    date: str | None
    filters: str | None


def install_dashboard(
    app: FastAPI, registry: Registry, collector_url: str, analytics: Analytics, today: Callable[[], dt.date]
) -> None:
    router = APIRouter(tags=["dashboard"])
    v1 = V1Stats(analytics, today)
    Period = Query("30d", description="As the Stats API v1's period.")
    Date = Query(None, description="As the Stats API v1's date.")
    Filters = Query(None, description="As the Stats API v1's filters.")
    Authorization = Header(None, description="Bearer <token> (private sites)")
    Site = Path(description="The site's domain.", examples=["example.com"])

    def readable_view(
        site: str = Site,
        period: str = Period,
        date: str | None = Date,
        filters: str | None = Filters,
        authorization=Authorization,
    ) -> View:
        """The view the request names, once its token opens the site."""
        check_access(registry.can_read, site, authorization)
        return View(site, period, date, filters)

    @router.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @router.get("/sites/{site}", include_in_schema=False)
    def site_page(site: str) -> FileResponse:  # noqa: ARG001 (the page reads the site from its URL)
        return FileResponse(STATIC / "site.html")

    @router.get("/sites/{site}/snippet", include_in_schema=False)
    def snippet_page(site: str) -> FileResponse:  # noqa: ARG001
        return FileResponse(STATIC / "snippet.html")

    @router.get("/map/{name}", include_in_schema=False)
    def map_file(name: str) -> FileResponse:
        if name not in SERVED or not (map_dir() / name).exists():
            raise HTTPException(404, f"no map file {name!r} (run `make setup` to fetch the map data)")
        return FileResponse(map_dir() / name, headers={"Cache-Control": "public, max-age=86400"})

    @router.get("/api/sites", summary="Registered sites (names and access, no stats)")
    def list_sites() -> list[dict]:
        return [{"domain": s.domain, "public": s.public} for s in registry.list_sites()]

    @router.get("/api/config", summary="What the dashboard needs to know about this deployment")
    def config() -> dict:
        return {
            "collector_url": collector_url,
            "topline": TOPLINE,
            "chart_metrics": CHART_METRICS,
            "chart_intervals": CHART_INTERVALS,
            "rows": ROWS,
            "panels": panels_config(),
            "props_tab": PROPS_TAB,
        }

    @router.get(
        "/api/sites/{site}/export",
        summary="The view as a ZIP of CSV files (the time series and each panel's tab)",
        response_class=Response,
        responses={200: {"content": {"application/zip": {}}}},
    )
    def export(view: View = Depends(readable_view)) -> Response:
        data = view_zip(view_files(v1, view.site, view.period, view.date, view.filters))
        stem = f"{view.site}-{view.period}{'-' + view.date if view.date else ''}"
        name = re.sub(r"[^A-Za-z0-9._-]", "_", stem) + ".zip"
        return Response(
            data, media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="{name}"'}
        )

    @router.get("/api/sites/{site}/query", summary="The view's top-line numbers as a Stats API v2 query")
    def query(site: str = Site, period: str = Period, date: str | None = Date, filters: str | None = Filters) -> dict:
        return view_query(site, period, date, filters, today())

    @router.get("/api/sites/{site}/props", summary="The custom property keys of a view's events, most used first")
    def props(view: View = Depends(readable_view)) -> dict:
        question = v1.question(view.site, view.period, view.date, "events", view.filters)
        return {"results": analytics.prop_keys(question)}

    @router.get("/api/sites/{site}/realtime", summary="The last 30 minutes (the real-time store)")
    def realtime(site: str = Site, authorization=Authorization) -> dict:
        check_access(registry.can_read, site, authorization)
        return last_minutes(analytics, site)

    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
