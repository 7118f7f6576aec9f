"""Synthetic but realistic pixel traffic, sent through the real collector over HTTP.

Sites, pages and referrers follow skewed (Zipf-like) popularity; user agents are a realistic
mix of desktop, mobile and tablet browsers plus a few percent bots and tools. Each simulated
visitor has its own IP (sent as X-Forwarded-For, honoured when the collector trusts the sender).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import re
from collections.abc import Callable

import httpx

from events.days import day_bounds
from events.identity import truncate_ip, visitor_id
from events.raw import build_raw_event

USER_AGENTS: list[tuple[str, float]] = [
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        30,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
        9,
    ),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", 7),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        6,
    ),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36", 3),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        17,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",
        11,
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
        5,
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
        3,
    ),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 2),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 1),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36",
        0.5,
    ),
    ("curl/8.5.0", 0.5),
]
PAGES = [
    "/",
    "/pricing",
    "/blog",
    "/blog/launch",
    "/blog/lambda-architecture",
    "/docs",
    "/docs/install",
    "/docs/api",
    "/about",
    "/contact",
    "/careers",
    "/changelog",
]
REFERRERS: list[tuple[str, float]] = [
    ("", 40),
    ("https://www.google.com/", 25),
    ("https://duckduckgo.com/", 4),
    ("https://www.bing.com/", 3),
    ("https://news.ycombinator.com/", 6),
    ("https://t.co/abc123", 5),
    ("https://www.reddit.com/r/selfhosted/", 5),
    ("https://github.com/", 4),
    ("https://www.linkedin.com/", 3),
    ("https://example-blog.net/post/42", 5),
]


_BUILD = re.compile(r"(Chrome/|Firefox/|Version/)(\d+)\.[\d.]+")


def zipf_weights(n: int, s: float = 1.1) -> list[float]:
    return [1 / (i + 1) ** s for i in range(n)]


class TrafficModel:
    def __init__(self, sites: int, seed: int | None = None, visitors: int | None = None):
        self.rng = random.Random(seed)
        self.sites = [f"site{i + 1}.example" for i in range(sites)]
        self.site_weights = zipf_weights(sites)
        self.page_weights = zipf_weights(len(PAGES))
        agents, weights = [u for u, _ in USER_AGENTS], [w for _, w in USER_AGENTS]
        # Addresses drawn from the whole IPv4 unicast space: the database spreads them over the
        # world as the address space is allocated (a few land in private ranges: located nowhere).
        self.visitors = [
            (
                f"{self.rng.randrange(1, 224)}.{self.rng.randrange(256)}.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}",
                self._version_of(self.rng.choices(agents, weights)[0]),
            )
            for _ in range(visitors or max(50, sites * 200))
        ]

    def _version_of(self, ua: str) -> str:
        """A third of visitors run another build of their browser: real traffic's long UA tail
        (bounded: ~1,600 builds per browser, ~15k distinct UAs at most, as in a busy site's day)."""
        if self.rng.random() < 0.67:
            return ua
        return _BUILD.sub(
            lambda m: (
                f"{m.group(1)}{int(m.group(2)) - self.rng.randrange(8)}.0."
                f"{6000 + 37 * self.rng.randrange(20)}.{self.rng.randrange(10)}"
            ),
            ua,
            count=1,
        )

    def hit(self) -> tuple[dict[str, str], dict[str, str]]:
        rng = self.rng
        site = rng.choices(self.sites, self.site_weights)[0]
        page = rng.choices(PAGES, self.page_weights)[0]
        ip, ua = rng.choice(self.visitors)
        ref = rng.choices([r for r, _ in REFERRERS], [w for _, w in REFERRERS])[0]
        params = {"site": site, "url": f"https://{site}{page}"}
        if ref:
            params["ref"] = ref
        if rng.random() < 0.05:
            params["url"] += "?utm_source=newsletter&utm_medium=email&utm_campaign=launch"
        return params, {"user-agent": ua, "x-forwarded-for": ip, "accept-language": "en-US,en;q=0.9"}


async def send_traffic(
    base_url: str,
    events: int,
    sites: int,
    rate: float | None = None,
    concurrency: int = 32,
    seed: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Send ``events`` hits (90% GET /p.gif, 10% POST /collect); returns how many got a 2xx."""
    model = TrafficModel(sites, seed)
    ok = 0
    queue: asyncio.Queue = asyncio.Queue(maxsize=concurrency * 4)

    async def worker(client: httpx.AsyncClient):
        nonlocal ok
        while (item := await queue.get()) is not None:
            params, headers = item
            try:
                if model.rng.random() < 0.9:
                    resp = await client.get("/p.gif", params=params, headers=headers)
                else:
                    resp = await client.post("/collect", json=params, headers=headers)
                ok += resp.status_code < 300
            except httpx.HTTPError:
                pass
            if progress:
                progress(1)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=10) as client:
        tasks = [asyncio.create_task(worker(client)) for _ in range(concurrency)]
        loop = asyncio.get_running_loop()
        started = loop.time()
        for i in range(events):
            if rate:
                delay = started + i / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            await queue.put(model.hit())
        for _ in tasks:
            await queue.put(None)
        await asyncio.gather(*tasks)
    return ok


def history(model: TrafficModel, day: dt.date, events: int, seed: int = 0):
    """``events`` raw events spread over one past UTC day, stamped as the collector would have
    stamped them (event ids, the day's keyed visitor ids, truncated IPs): history for the batch
    layer and the dashboard without waiting for days to pass."""
    rng = random.Random(f"{seed}:{day}")
    salt = rng.randbytes(32)  # the day's salt; gone afterwards, as in the collector
    start, end = day_bounds(day)
    for ts in sorted(rng.randrange(start, end) for _ in range(events)):
        params, headers = model.hit()
        ip, ua = headers["x-forwarded-for"], headers["user-agent"]
        yield build_raw_event(
            params,
            ts_ms=ts,
            event_id=rng.randbytes(16).hex(),
            ua=ua,
            referer_header="",
            lang=headers["accept-language"],
            dnt=False,
            ip_trunc=truncate_ip(ip),
            visitor_id_of=lambda site, ua, ip=ip: visitor_id(salt, site, ip, ua),
            source="demo",
        )


def write_history(storage, raw_events, partition: int = 0, batch: int = 50_000) -> int:
    """Land raw events in the raw store through the lander's own landing code; returns events.

    File names carry offsets from a clock-derived base far above any real partition's, so
    history never overwrites what the lander landed, and a second run adds to the first.
    """
    import orjson

    from batch_layer.lander.landing import Message, land_batch

    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    landed, offset, chunk = 0, now_ms * 1000, []

    def flush() -> int:
        out = land_batch(chunk, partition=partition, offset_base=0, is_raw_topic=True, topic="demo", now_ms=now_ms)
        for path, data in out.files.items():
            storage.write_atomic(path, data)
        return out.events

    for event in raw_events:
        chunk.append(Message(offset, orjson.dumps(event), event["ts"]))
        offset += 1
        if len(chunk) >= batch:
            landed += flush()
            chunk = []
    if chunk:
        landed += flush()
    return landed
