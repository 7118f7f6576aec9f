"""Run the collector under uvicorn (httptools + uvloop), with N worker processes."""

from __future__ import annotations

import os
import shutil

import uvicorn

from core.settings import Settings


def serve(settings: Settings) -> None:
    if settings.collector_workers > 1:
        # Each worker counts on its own; the multiprocess collector sums them for /metrics.
        prom_dir = settings.run_dir / f"prometheus-{settings.collector_port}"
        shutil.rmtree(prom_dir, ignore_errors=True)
        prom_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(prom_dir)
    uvicorn.run(
        "pixel_api.app:create_app",
        factory=True,
        host=settings.collector_host,
        port=settings.collector_port,
        workers=settings.collector_workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=30,
    )
