"""Floor for bench/collector_http.py: apps that answer /p.gif with the collector's GIF and do
nothing else, on the collector's server (granian, uvloop): what the server alone costs per
request in Python, before any per-hit work. Not used by the product."""

from __future__ import annotations

from pixel_api.app import GIF, GIF_BODY, GIF_HEADERS, GIF_START


async def asgi(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send(GIF_START)
    await send(GIF_BODY)


async def rsgi(scope, protocol):
    """Granian's own interface (RSGI): no ASGI message dicts."""
    protocol.response_bytes(200, GIF_HEADERS, GIF)
