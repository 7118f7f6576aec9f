"""The collector's application, for ASGI and RSGI servers.

/p.gif is served by a raw callable in front of FastAPI: routing through FastAPI costs ~3x per
request (measured, see bench/), and the pixel is the only path that sees real traffic. Everything
else (POST /collect, POST /api/event, GET /p.js, /healthz, /metrics, the OpenAPI docs) is an
ordinary FastAPI app. The callable speaks ASGI (uvicorn) and granian's RSGI (pixel_api.rsgi).
"""

from __future__ import annotations

import gzip
import logging
import multiprocessing
import os
import signal
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from core.process import watch_parent
from core.settings import Settings
from events.badrows import BadReason
from pixel_api import metrics
from pixel_api.bodies import beacon_params, plausible_params
from pixel_api.collector import Collector, named_headers, request_headers
from pixel_api.rsgi import AsgiBridge, host_of

log = logging.getLogger(__name__)

# The smallest transparent GIF: 1x1, one-color palette, 43 bytes.
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
GIF_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"image/gif"),
        (b"content-length", b"43"),
        (b"cache-control", b"no-store"),
    ],
}
GIF_BODY = {"type": "http.response.body", "body": GIF}
HEAD_BODY = {"type": "http.response.body", "body": b""}
METHOD_NOT_ALLOWED = {
    "type": "http.response.start",
    "status": 405,
    "headers": [(b"allow", b"GET, HEAD"), (b"content-type", b"text/plain")],
}
NOT_ALLOWED_BODY = b"use GET /p.gif or POST /collect\n"
# RSGI takes str headers; the server sets content-length itself.
GIF_HEADERS = [(n.decode(), v.decode()) for n, v in GIF_START["headers"] if n != b"content-length"]
NOT_ALLOWED_HEADERS = [(n.decode(), v.decode()) for n, v in METHOD_NOT_ALLOWED["headers"]]


class PixelRoute:
    """Serves /p.gif itself and hands every other request to the FastAPI app: as an ASGI app
    (``__call__``) and as an RSGI app (``__rsgi__``, with ``__rsgi_init__``/``__rsgi_del__`` in
    place of the ASGI lifespan)."""

    def __init__(self, app: FastAPI, collector: Collector):
        self.app = app
        self.bridge = AsgiBridge(app)
        self.collector = collector
        self.tallies = collector.handoff.tallies

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != "/p.gif":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method == "GET":
            started = time.perf_counter()
            try:
                client = scope.get("client")
                self.collector.record_query(
                    scope["query_string"], request_headers(scope["headers"]), client[0] if client else ""
                )
            finally:
                # Whatever happened, the browser gets its GIF: it can't act on an error anyway.
                self._counted(started)
                await send(GIF_START)
                await send(GIF_BODY)
        elif method == "HEAD":
            await send(GIF_START)
            await send(HEAD_BODY)
        else:
            await send(METHOD_NOT_ALLOWED)
            await send({"type": "http.response.body", "body": NOT_ALLOWED_BODY})

    def _counted(self, started: float) -> None:
        self.tallies.hits["gif"] += 1
        self.tallies.latencies.append(time.perf_counter() - started)

    def __rsgi_init__(self, _loop) -> None:
        self.collector.start()

    def __rsgi_del__(self, _loop) -> None:
        self.collector.stop()

    async def __rsgi__(self, scope, protocol) -> None:
        if scope.proto != "http" or scope.path != "/p.gif":
            await self.bridge(scope, protocol)
            return
        method = scope.method
        if method == "GET":
            started = time.perf_counter()
            try:
                headers = named_headers(scope.headers)
                self.collector.record_query(scope.query_string.encode(), headers, host_of(scope.client))
            finally:
                self._counted(started)
                protocol.response_bytes(200, GIF_HEADERS, GIF)
        elif method == "HEAD":
            protocol.response_bytes(200, GIF_HEADERS, GIF)  # the server sends a HEAD's headers only
        else:
            protocol.response_bytes(405, NOT_ALLOWED_HEADERS, NOT_ALLOWED_BODY)


def create_fastapi(collector: Collector) -> FastAPI:
    settings = collector.settings

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        collector.start()
        yield
        collector.stop()

    app = FastAPI(
        title="pixel collector",
        description="Answers the tracking pixel and hands raw events to Kafka.",
        lifespan=lifespan,
    )

    async def record_posted(request: Request, parse, source: str, route: str, error) -> Response | None:
        """Record the hits a POST body holds (``parse``: body -> (hits, problem)); else the error
        response: 413 past max_body_bytes (reading stops there: memory stays bounded), 400 for a
        body that holds no hit. Either way a bad row keeps what was sent."""
        headers = request_headers(request.scope["headers"])
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > settings.max_body_bytes:
                collector.reject(BadReason.BODY_TOO_LARGE, bytes(body), f">{settings.max_body_bytes} bytes", headers)
                return error(f"body over {settings.max_body_bytes} bytes", 413)
        hits, problem = parse(bytes(body))
        if problem:
            collector.reject(problem[0], bytes(body), problem[1], headers)
            return error(problem[1], 400)
        client = request.scope.get("client")
        for params in hits:
            collector.record(params, headers, client[0] if client else "", source)
        collector.handoff.tallies.hits[route] += 1
        return None

    def one_beacon(body: bytes):
        params, problem = beacon_params(body)
        return [params], problem

    @app.post("/collect", status_code=204, summary="Beacon endpoint (navigator.sendBeacon)")
    async def collect(request: Request) -> Response:
        error = lambda message, status: JSONResponse({"error": message}, status)  # noqa: E731
        return await record_posted(request, one_beacon, "post", "collect", error) or Response(status_code=204)

    @app.post("/api/event", status_code=202, summary="Plausible's Events API (its scripts and clients)")
    async def plausible_event(request: Request) -> Response:
        error = lambda message, status: JSONResponse({"errors": {"request": message}}, status)  # noqa: E731
        done = await record_posted(request, plausible_params, "plausible", "api_event", error)
        return done or Response("ok", status_code=202, media_type="text/plain")

    script = TrackerScript()

    @app.get("/p.js", summary="The tracker script (pageviews, SPA navigations, custom events)")
    async def tracker_script(request: Request) -> Response:
        return script.response(request.headers.get("accept-encoding", ""))

    @app.get("/healthz", summary="Liveness and hand-off state")
    async def healthz() -> dict:
        h = collector.handoff
        return {
            "status": "ok",
            "broker_up": not h.broker_down,
            "spooling": h.spooling,
            "retained": len(h.retention) if h.retention is not None else None,
        }

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return app


class TrackerScript:
    """static/p.js, read once, served gzipped to browsers that take it, cached for an hour."""

    def __init__(self):
        self.plain = (Path(__file__).parent / "static" / "p.js").read_bytes()
        self.gzipped = gzip.compress(self.plain, 9, mtime=0)

    def response(self, accept_encoding: str) -> Response:
        headers = {"Cache-Control": "public, max-age=3600", "Vary": "Accept-Encoding"}
        media = "application/javascript; charset=utf-8"
        if "gzip" in accept_encoding:
            return Response(self.gzipped, media_type=media, headers={**headers, "Content-Encoding": "gzip"})
        return Response(self.plain, media_type=media, headers=headers)


def create_app(settings: Settings | None = None) -> PixelRoute:
    """ASGI factory (granian's or uvicorn's): one Collector per worker process."""
    collector = Collector(settings or Settings())
    master = multiprocessing.parent_process()
    if master is not None:  # a worker: don't outlive a master that was SIGKILLed (holding the port)
        watch_parent(master.pid, lambda: leave_orphaned(collector))
    return PixelRoute(create_fastapi(collector), collector)


def leave_orphaned(collector: Collector, grace_seconds: float = 30) -> None:
    """The master is gone: a worker that serves stops as on SIGTERM (its server stops accepting,
    the lifespan's shutdown flushes the hand-off to Kafka or the spool), and is ended if that
    takes too long; one that never started serving has accepted nothing and just exits."""
    if not collector.serving:
        os._exit(0)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace_seconds)
    log.error("still running %ss after the master died; exiting", grace_seconds)
    os._exit(1)
