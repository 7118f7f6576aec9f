"""Which site a record of the lake belongs to, and how site names compare.

A raw or clean event names its site; a bad row carries what was refused as its payload: a raw
event, a clean event (too late), a beacon body (Plausible's ``domain`` or ``d``), or a pixel's
query string (``site=``). Erasing a site (``pixel sites delete --purge``) finds its rows with it.
"""

from __future__ import annotations

from urllib.parse import parse_qs

import orjson

# A bad row's payload may be a bad row again (a re-landed one): how deep to look.
_MAX_NESTING = 3


def normalize_site(value: str) -> str:
    """A site name as the registry keeps it: trimmed, lower case, without a leading ``www.``."""
    return value.strip().lower().removeprefix("www.")


def site_of(record: object, _depth: int = 0) -> str:
    """The site named by a decoded record of the lake, as written there; "" when none is."""
    if not isinstance(record, dict):
        return ""
    for key in ("site", "domain", "d"):  # an event; a Plausible Events API body (long, short form)
        if isinstance(record.get(key), str) and record[key]:
            return record[key]
    payload = record.get("payload")
    if not isinstance(payload, str) or "reason" not in record or _depth >= _MAX_NESTING:
        return ""
    try:
        return site_of(orjson.loads(payload), _depth + 1)
    except orjson.JSONDecodeError:
        pass
    try:  # a pixel's query string
        found = parse_qs(payload.lstrip("?"), max_num_fields=1000).get("site")
    except ValueError:  # more fields than any pixel sends: not a query string
        return ""
    return found[0] if found else ""


def site_of_line(line: bytes) -> str:
    """The site of one JSON line of the lake (raw, bad raw or bad rows); "" when none is."""
    try:
        return site_of(orjson.loads(line))
    except orjson.JSONDecodeError:
        return ""
