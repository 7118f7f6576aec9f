"""Granian's own interface (RSGI) for the collector: the request's scope is a native object and
the response one call, with no ASGI message dicts between them. On this box an app that only
answers the GIF serves 1.1-1.3x the requests per second in RSGI that it does in ASGI
(bench/collector_http.py).

/p.gif is answered in RSGI by pixel_api.app.PixelRoute; every other path goes through
``AsgiBridge`` to the ordinary FastAPI app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


def host_of(address: str) -> str:
    """The host of an RSGI address ("203.0.113.7:51234", "[2001:db8::1]:443")."""
    host = address.rpartition(":")[0]
    return host[1:-1] if host.startswith("[") else host


def address_of(address: str) -> tuple[str, int] | None:
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        return None
    return host_of(address), int(port)


class AsgiBridge:
    """Serves an ASGI app's HTTP requests over RSGI. The request body is streamed to the app
    chunk by chunk (its own size limits still hold); the response is sent once the app has
    written all of it (the collector's other responses are small: JSON, the tracker script,
    the metrics page). An app that fails before it answered gets a plain 500."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope, protocol) -> None:
        asgi_scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": scope.http_version,
            "method": scope.method,
            "scheme": scope.scheme,
            "path": scope.path,
            "raw_path": scope.path.encode(),
            "query_string": scope.query_string.encode(),
            "root_path": "",
            "headers": [(name.encode(), value.encode("latin-1", "replace")) for name, value in scope.headers.items()],
            "client": address_of(scope.client),
            "server": address_of(scope.server),
        }
        chunks = aiter(protocol)
        body_sent = False

        async def receive() -> dict:
            nonlocal body_sent
            if not body_sent:
                try:
                    return {"type": "http.request", "body": await anext(chunks), "more_body": True}
                except StopAsyncIteration:
                    body_sent = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            await protocol.client_disconnect()
            return {"type": "http.disconnect"}

        status, headers, body = 500, [("content-type", "text/plain")], bytearray(b"internal error\n")

        async def send(message: dict) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in message.get("headers", ())]
                body.clear()
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))

        try:
            await self.app(asgi_scope, receive, send)
        finally:
            protocol.response_bytes(status, headers, bytes(body))
