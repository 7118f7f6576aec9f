"""Per-hit work: read request metadata, stamp, hash, hand off. Nothing here blocks.

Shared by the raw-ASGI /p.gif route and FastAPI's POST /collect, so both produce identical events.
"""

from __future__ import annotations

import time
from functools import lru_cache
from urllib.parse import unquote_to_bytes

import orjson

from core.kafka.clients import KafkaClients, clients_for
from core.proxies import TrustedProxies
from core.settings import Settings
from events.badrows import BadReason, encode_bad_row, make_bad_row
from events.identity import truncate_ip, visitor_id
from events.props import PROP_PREFIX, bounded_props
from events.raw import build_raw_event, new_event_id
from pixel_api.handoff import HandOff
from pixel_api.salt import DailySalt
from pixel_api.ticker import Ticker

# Real traffic repeats IPs heavily; ipaddress parsing is the slowest step of a hit otherwise.
cached_truncate_ip = lru_cache(maxsize=65536)(truncate_ip)

WANTED_HEADER_NAMES = ("user-agent", "referer", "accept-language", "dnt", "x-forwarded-for")
WANTED_HEADERS = {name.encode() for name in WANTED_HEADER_NAMES}
_WANTED_KEYS = tuple((name, name.encode()) for name in WANTED_HEADER_NAMES)
PIXEL_PARAMS = frozenset({"site", "url", "ref", "uid", "eid", "e", "w"})


@lru_cache(maxsize=16384)
def _unquote_plus(raw: bytes) -> str:
    # Cached: pages and referrers repeat (Zipf), and CPython's unquote is pure Python (~4 us).
    if b"%" in raw or b"+" in raw:
        raw = unquote_to_bytes(raw.replace(b"+", b" "))
    return raw.decode("utf-8", "replace")


def parse_pixel_query(query: bytes) -> dict[str, str]:
    """The pixel's parameters from a query string: first value of each known name.

    Same result as urllib's parse_qsl for those names (tests prove it), at a fraction of the
    cost: unknown parameters are skipped undecoded, and values without escapes aren't unquoted.
    """
    params: dict[str, str] = {}
    for part in query.split(b"&"):
        key_raw, _, value = part.partition(b"=")
        key = _unquote_plus(key_raw)
        if (key in PIXEL_PARAMS or key.startswith(PROP_PREFIX)) and key not in params:
            params[key] = _unquote_plus(value)
    return params


def props_of(params: dict[str, str]) -> dict[str, str]:
    """The custom properties among a hit's parameters (``p.<key>=<value>``)."""
    return {key[len(PROP_PREFIX) :]: value for key, value in params.items() if key.startswith(PROP_PREFIX)}


def request_headers(raw_headers: list[tuple[bytes, bytes]]) -> dict[bytes, str]:
    """The few headers a hit uses, decoded; duplicates beyond the first are ignored."""
    found: dict[bytes, str] = {}
    for name, value in raw_headers:
        if name in WANTED_HEADERS and name not in found:
            found[name] = value.decode("latin-1")
    return found


def named_headers(headers) -> dict[bytes, str]:
    """request_headers for a server that looks headers up by name (granian's RSGI ``get``)."""
    found: dict[bytes, str] = {}
    for name, key in _WANTED_KEYS:
        value = headers.get(name)
        if value is not None:
            found[key] = value
    return found


class Collector:
    def __init__(self, settings: Settings, clients: KafkaClients | None = None):
        self.settings = settings
        clients = clients_for(settings, clients)
        self.salt = DailySalt(settings.secrets_dir)
        self.proxies = TrustedProxies(settings.trusted_proxies)
        self.handoff = HandOff(settings, clients)
        self.ticker = Ticker(settings, clients)
        self.serving = False  # the server's lifespan started the hand-off: hits may be accepted
        self.raw_topic = settings.raw_topic
        self.bad_topic = settings.bad_topic

    def start(self) -> None:
        """The server's startup: hits may be accepted from now on."""
        self.handoff.start()
        self.ticker.start()
        self.serving = True

    def stop(self) -> None:
        """The server's shutdown: everything accepted is delivered or spooled (pixel_api.handoff)."""
        self.ticker.stop()
        self.handoff.stop()

    def record(self, params: dict[str, str], headers: dict[bytes, str], peer: str, source: str) -> None:
        """Build the raw event for one hit and queue it for Kafka. Properties over the bounds are
        dropped from the event (which says so in ``trunc``) and kept as a bad row."""
        ts_ms = time.time_ns() // 1_000_000
        props, dropped = bounded_props(props_of(params))
        ip = self.proxies.client_ip(peer, headers.get(b"x-forwarded-for"))
        salt = self.salt.for_ms(ts_ms)
        event = build_raw_event(
            params,
            ts_ms=ts_ms,
            event_id=new_event_id(),
            ua=headers.get(b"user-agent", ""),
            referer_header=headers.get(b"referer", ""),
            lang=headers.get(b"accept-language", "").split(",", 1)[0].split(";", 1)[0].strip(),
            dnt=headers.get(b"dnt") == "1",
            ip_trunc=cached_truncate_ip(ip),
            visitor_id_of=lambda site, ua: visitor_id(salt, site, ip, ua),
            source=source,
            props=props,
        )
        if dropped:
            event.setdefault("trunc", []).append("props")
            detail = f"event {event['event_id']}: {len(dropped)} properties over the bounds dropped"
            self.reject(BadReason.PROPS_DROPPED, orjson.dumps(dropped), detail, headers)
        self.handoff.submit(self.raw_topic, event["site"].encode(), orjson.dumps(event))

    def record_query(self, query: bytes, headers: dict[bytes, str], peer: str) -> None:
        if len(query) > self.settings.max_query_bytes:
            self.reject(BadReason.QUERY_TOO_LARGE, query, f"{len(query)} bytes", headers)
            return
        self.record(parse_pixel_query(query), headers, peer, "get")

    def reject(self, reason: BadReason, payload: bytes, detail: str, headers: dict[bytes, str]) -> None:
        """Bad input still costs nothing downstream: it becomes a bad row, never an exception."""
        row = make_bad_row(reason, payload, source="collector", detail=detail, ua=headers.get(b"user-agent", "")[:512])
        self.handoff.submit(self.bad_topic, b"", encode_bad_row(row))
        from pixel_api import metrics  # rare path; keeps prometheus off the hot path's imports

        metrics.BAD.labels(reason.value).inc()
