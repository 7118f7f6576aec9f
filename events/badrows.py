"""Bad rows: input we could not accept, kept verbatim with a typed reason.

Nothing is dropped silently: whatever a stage rejects becomes a bad row on the bad-rows topic
(and from there lands in the raw store under ``badraw/``), so it can be inspected and replayed.
"""

from __future__ import annotations

import enum
import time

import orjson

# Large enough for any real pixel request, small enough that a hostile payload can't exhaust memory.
MAX_BAD_PAYLOAD_BYTES = 16 * 1024


class BadReason(str, enum.Enum):
    """Why a row was rejected. Values are stable: dashboards and replays key on them."""

    QUERY_TOO_LARGE = "query_too_large"  # collector: query string over the limit
    BODY_TOO_LARGE = "body_too_large"  # collector: POST body over the limit
    BODY_NOT_JSON = "body_not_json"  # collector: POST /collect body isn't a JSON object
    PROPS_DROPPED = "props_dropped"  # collector: custom properties over the bounds, dropped from the event
    INVALID_JSON = "invalid_json"  # lander: message isn't valid UTF-8 JSON
    NOT_AN_OBJECT = "not_an_object"  # lander: JSON, but not an object
    UNSUPPORTED_VERSION = "unsupported_version"  # lander: raw schema version unknown
    MISSING_FIELD = "missing_field"  # lander: a required raw field is absent
    BAD_FIELD_TYPE = "bad_field_type"  # lander: a raw field has the wrong type
    BAD_TIMESTAMP = "bad_timestamp"  # lander: ts outside any plausible range
    MISSING_SITE = "missing_site"  # enrichment: no site parameter
    INVALID_URL = "invalid_url"  # enrichment: page URL isn't an http(s) URL with a host
    UNREADABLE_FILE = "unreadable_file"  # batch: a raw file's compression is corrupt or cut short
    TOO_LATE = "too_late"  # batch: landed in a day's folder beyond the lateness window of its own day


def make_bad_row(
    reason: BadReason,
    payload: bytes | str,
    *,
    source: str,
    detail: str = "",
    now_ms: int | None = None,
    **origin: object,
) -> dict:
    """Build a bad row. ``origin`` carries where it came from (topic, partition, offset, ...)."""
    raw = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else payload
    kept = raw[:MAX_BAD_PAYLOAD_BYTES]
    row = {
        "v": 1,
        "reason": reason.value,
        "detail": detail[:1000],
        "source": source,
        "ts": int(time.time() * 1000) if now_ms is None else now_ms,
        # Decoded leniently so the row is always valid JSON; the byte length says what was cut.
        "payload": kept.decode("utf-8", "replace"),
        "payload_bytes": len(raw),
        "payload_truncated": len(raw) > len(kept),
    }
    row.update(origin)
    return row


def encode_bad_row(row: dict) -> bytes:
    return orjson.dumps(row)
