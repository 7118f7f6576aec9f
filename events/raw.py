"""The raw event (contract): what the collector stamps and the lander lands.

One JSON object per Kafka message on ``pixel.raw``, key = site. Building it is the collector's
only per-hit work; checking it is the lander's. Both are here so they can't drift apart.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import orjson

from events.badrows import BadReason
from events.props import props_text, screen_width

if TYPE_CHECKING:  # the collector imports this module; numpy and Arrow stay out of its workers
    import numpy as np
    import pyarrow as pa

RAW_VERSION = 1

# Longest value kept per field; longer values are cut and named in the event's "trunc" list.
FIELD_LIMITS: dict[str, int] = {
    "site": 256,
    "event": 64,
    "url": 2048,
    "referrer": 2048,
    "ua": 512,
    "uid": 256,
    "eid": 128,
    "lang": 64,
}

# Earliest plausible server timestamp (2020-01-01T00:00:00Z); anything before is a broken clock.
MIN_TS_MS = 1_577_836_800_000
# Server clocks may be ahead of the lander's; more than a day ahead is broken.
MAX_CLOCK_AHEAD_MS = 86_400_000


# Event-time ticks: every collector sends one to each pixel.raw partition every second or so, so
# a partition without traffic still advances the speed layer's watermark (instead of Flink's
# idle-partition timeout, which under a backlog marks busy partitions idle and drops their
# events as late). A tick is no event: the lander skips it, the speed layer's enrichment calls
# it bad (no site) after its timestamp has moved the watermark.
TICK_PREFIX = b'{"tick":1,'


def tick_message(ts_ms: int) -> bytes:
    return TICK_PREFIX + b'"ts":%d}' % ts_ms


def is_tick(value: bytes | None) -> bool:
    return value is not None and value.startswith(TICK_PREFIX)


def new_event_id() -> str:
    """128 random bits as hex: unique without coordination between collector workers."""
    return os.urandom(16).hex()


def clean_field(name: str, value: str | None, truncated: list[str]) -> str:
    """Bound a client-supplied field; NULs are removed (they'd make visitor_id input ambiguous)."""
    if not value:
        return ""
    if "\0" in value:
        value = value.replace("\0", "")
    limit = FIELD_LIMITS[name]
    if len(value) > limit:
        truncated.append(name)
        return value[:limit]
    return value


def build_raw_event(
    params: dict[str, str],
    *,
    ts_ms: int,
    event_id: str,
    ua: str,
    referer_header: str,
    lang: str,
    dnt: bool,
    ip_trunc: str,
    visitor_id_of: Any,
    source: str,
    props: dict[str, str] | None = None,
) -> dict:
    """Turn one hit's request metadata into the raw event.

    ``params`` are the pixel's query (or beacon body) fields. ``visitor_id_of(site, ua)`` computes
    the keyed hash; it is passed in so this module never sees the full IP or the salt. ``props``:
    the event's custom properties, already bounded (events.props.bounded_props).
    """
    truncated: list[str] = []
    site = clean_field("site", params.get("site"), truncated)
    ua = clean_field("ua", ua, truncated)
    event = {
        "v": RAW_VERSION,
        "event_id": event_id,
        "ts": ts_ms,
        "site": site,
        "event": clean_field("event", params.get("e"), truncated) or "pageview",
        # The page is the explicit url= param; a plain <img> tag has only the Referer header.
        "url": clean_field("url", params.get("url") or referer_header, truncated),
        "referrer": clean_field("referrer", params.get("ref"), truncated),
        "ua": ua,
        "ip_trunc": ip_trunc,
        "visitor_id": visitor_id_of(site, ua),
        "uid": clean_field("uid", params.get("uid"), truncated),
        "eid": clean_field("eid", params.get("eid"), truncated),
        "lang": clean_field("lang", lang, truncated),
        "dnt": dnt,
        "src": source,
    }
    if props:
        event["props"] = props_text(props)
    if (width := screen_width(params.get("w"))) is not None:
        event["w"] = width
    if truncated:
        event["trunc"] = truncated
    return event


# The raw event's fields and types (name, type), as in CLEAN_SCHEMA: the batch job reads the raw
# dataset with exactly this schema (never inferring one), so a field added here is read there.
RAW_SCHEMA: list[tuple[str, str]] = [
    ("v", "long"),
    ("event_id", "string"),
    ("ts", "long"),
    ("site", "string"),
    ("event", "string"),
    ("url", "string"),
    ("referrer", "string"),
    ("ua", "string"),
    ("ip_trunc", "string"),
    ("visitor_id", "string"),
    ("uid", "string"),
    ("eid", "string"),
    ("lang", "string"),
    ("dnt", "boolean"),
    ("src", "string"),
    ("props", "string"),  # custom properties: a JSON object's text (events.props), optional
    ("w", "long"),  # the screen's width in CSS pixels, optional
]
RAW_COLUMNS = [name for name, _ in RAW_SCHEMA]

# Field -> type every landed raw event must have. Semantic checks (is the URL valid, is the site
# known) belong to enrichment; the lander only refuses what it can't even file by date.
REQUIRED_RAW_FIELDS: dict[str, type] = {"event_id": str, "ts": int, "site": str}


def check_raw_message(value: bytes | None, now_ms: int) -> tuple[dict | None, BadReason | None, str]:
    """Parse and structurally validate one message: (event, None, "") or (None, reason, detail)."""
    if value is None:
        return None, BadReason.INVALID_JSON, "empty message (tombstone)"
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return None, BadReason.INVALID_JSON, str(exc)[:200]
    if not isinstance(event, dict):
        return None, BadReason.NOT_AN_OBJECT, f"top-level JSON is {type(event).__name__}"
    if type(event.get("v")) is not int or event["v"] != RAW_VERSION:  # true == 1 and 1.0 == 1 in Python
        return None, BadReason.UNSUPPORTED_VERSION, f"v={event.get('v')!r}, expected {RAW_VERSION}"
    for name, typ in REQUIRED_RAW_FIELDS.items():
        if event.get(name) is None:  # null is absent, as for a schema-aware reader
            return None, BadReason.MISSING_FIELD, name
        # bool is an int subclass; a boolean timestamp is still wrong.
        if not isinstance(event[name], typ) or isinstance(event[name], bool):
            return None, BadReason.BAD_FIELD_TYPE, f"{name} is {type(event[name]).__name__}"
    ts = event["ts"]
    if ts < MIN_TS_MS or ts > now_ms + MAX_CLOCK_AHEAD_MS:
        return None, BadReason.BAD_TIMESTAMP, f"ts={ts}"
    return event, None, ""


def check_raw_table(raw: pa.Table, now_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """check_raw_message for rows a schema-aware reader already parsed into RAW_SCHEMA columns
    (the batch job). Returns (reason, detail) arrays, None where valid.

    Lines the reader couldn't parse, or whose fields had the wrong JSON type, never reach this:
    they go to check_raw_message, which names the exact fault.
    """
    import numpy as np
    import pyarrow.compute as pc

    def where(condition) -> np.ndarray:  # null (a missing value) never passes by accident
        return pc.fill_null(condition, True).to_numpy(zero_copy_only=False)

    n = raw.num_rows
    reason = np.full(n, None, dtype=object)
    detail = np.full(n, None, dtype=object)
    ts = raw.column("ts")
    bad_ts = where(pc.or_(pc.less(ts, MIN_TS_MS), pc.greater(ts, now_ms + MAX_CLOCK_AHEAD_MS))) & where(pc.is_valid(ts))
    reason[bad_ts] = BadReason.BAD_TIMESTAMP.value
    detail[bad_ts] = [f"ts={t}" for t in ts.filter(bad_ts).to_pylist()]
    # Checked in reverse order of check_raw_message, so the first failing check wins, as there.
    for name in reversed(REQUIRED_RAW_FIELDS):
        missing = where(pc.is_null(raw.column(name)))
        reason[missing] = BadReason.MISSING_FIELD.value
        detail[missing] = name
    version = raw.column("v")
    wrong_version = where(pc.not_equal(version, RAW_VERSION))
    reason[wrong_version] = BadReason.UNSUPPORTED_VERSION.value
    detail[wrong_version] = [f"v={v!r}, expected {RAW_VERSION}" for v in version.filter(wrong_version).to_pylist()]
    return reason, detail
