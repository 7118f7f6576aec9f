"""Rate limits on the Stats API: a token bucket per API token, or per client address when a
request has none. A request over its limit gets 429 with Retry-After; the other paths (the
dashboard's pages and assets, /healthz, /metrics) are not limited.

The defaults follow Plausible's 600 requests an hour per API key, with room for a burst. The
dashboard's own requests (marked with the ``X-Pixel-Dashboard`` header) have a budget of their own:
a view asks a dozen questions and a person clicks through many views an hour. A client that sends
the header gets that budget, still bounded. Buckets live in this process, bounded in number: a key
not seen for a while is forgotten, and so starts full again.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from core.proxies import TrustedProxies

MAX_KEYS = 100_000


class TokenBuckets:
    def __init__(self, per_hour: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate = per_hour / 3600.0  # tokens per second
        self.burst = burst
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 if ``key`` may go now (one token taken), else the seconds until it may."""
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
            self._buckets[key] = (tokens - 1 if wait == 0 else tokens, now)
            while len(self._buckets) > MAX_KEYS:
                self._buckets.popitem(last=False)
        return wait


DASHBOARD_HEADER = "x-pixel-dashboard"


def install_rate_limits(
    app: FastAPI,
    per_hour: float,
    burst: int,
    trusted_proxies: list[str],
    prefix: str = "/api/",
    dashboard: tuple[float, int] | None = None,
) -> TokenBuckets:
    """``dashboard``: (per hour, burst) of the dashboard's requests (default: the API's)."""
    buckets = TokenBuckets(per_hour, burst)
    own = dashboard or (per_hour, burst)
    limits = {False: (buckets, per_hour, burst), True: (TokenBuckets(*own), *own)}  # by the dashboard's header
    proxies = TrustedProxies(trusted_proxies)

    @app.middleware("http")
    async def limit(request: Request, call_next):
        if not request.url.path.startswith(prefix):
            return await call_next(request)
        authorization = request.headers.get("authorization", "")
        if authorization[:7].lower() == "bearer " and authorization[7:].strip():
            key = "token:" + authorization[7:].strip()
        else:
            peer = request.client.host if request.client else ""
            key = "ip:" + proxies.client_ip(peer, request.headers.get("x-forwarded-for"))
        bucket, rate, most = limits[DASHBOARD_HEADER in request.headers]
        wait = bucket.take(key)
        if wait > 0:
            seconds = math.ceil(wait)
            return JSONResponse(
                {
                    "error": f"rate limit: {rate:g} requests an hour (bursts of {most}) per API token, or per "
                    f"address without one; retry in {seconds} s"
                },
                status_code=429,
                headers={"Retry-After": str(seconds)},
            )
        return await call_next(request)

    return buckets
