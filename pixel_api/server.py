"""Run the collector with N worker processes: PIXEL_COLLECTOR_SERVER picks granian (Rust HTTP) in
its own interface, RSGI (the default, the fastest), granian in ASGI, or uvicorn (httptools +
uvloop, ASGI). All serve the same app (pixel_api.app.PixelRoute) and run its startup and
shutdown (the hand-off's start, and its flush).

In RSGI, granian leaves out a header whose value isn't ASCII (RFC 9110's obsolete obs-text): such
a hit is recorded without it. The ASGI servers pass its bytes on (decoded as latin-1)."""

from __future__ import annotations

import os
import shutil

from core.settings import Settings

APP = "pixel_api.app:create_app"


def serve(settings: Settings) -> None:
    if settings.collector_workers > 1:
        # Each worker counts on its own; the multiprocess collector sums them for /metrics.
        prom_dir = settings.run_dir / f"prometheus-{settings.collector_port}"
        shutil.rmtree(prom_dir, ignore_errors=True)
        prom_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(prom_dir)
    if settings.collector_server == "uvicorn":
        _uvicorn(settings)
    else:
        _granian(settings, rsgi=settings.collector_server == "granian")


def _granian(settings: Settings, rsgi: bool) -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops

    Granian(
        APP,
        factory=True,
        address=settings.collector_host,
        port=settings.collector_port,
        interface=Interfaces.RSGI if rsgi else Interfaces.ASGI,
        workers=settings.collector_workers,
        loop=Loops.uvloop,
        websockets=False,  # no WebSocket route: an upgrade request is answered as plain HTTP
        log_access=False,
        respawn_failed_workers=True,
        workers_kill_timeout=30,  # a worker's shutdown (the hand-off's flush) gets this long
    ).serve()


def _uvicorn(settings: Settings) -> None:
    import uvicorn

    uvicorn.run(
        APP,
        factory=True,
        host=settings.collector_host,
        port=settings.collector_port,
        workers=settings.collector_workers,
        loop="uvloop",
        http="httptools",
        ws="none",  # as granian: no WebSocket route, an upgrade request is plain HTTP
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=30,
    )
