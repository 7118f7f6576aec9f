"""The collector's POST bodies -> the hit parameters the pixel's query would carry (site, url,
ref, e, w, p.<key>, ...). Pure: a body that can't be one is a (reason, detail) for a bad row.

- ``/collect``: our beacon, a JSON object {site, url, ref, uid, eid, e, w, props}.
- ``/api/event``: Plausible's Events API, so a site leaving Plausible keeps its script or client:
  {name, url, domain, referrer, props, revenue} or the short keys its tracker sends {n, u, d, r,
  p, w, ...}, props an object or a JSON object's text; ``domain`` may list several sites
  ("a.example,b.example"): one event each.
"""

from __future__ import annotations

import orjson

from events.badrows import BadReason
from events.props import PROP_PREFIX, scalar_text

BEACON_FIELDS = ("site", "url", "ref", "uid", "eid", "e", "w")
# Plausible's long and short field names -> ours.
PLAUSIBLE_FIELDS = {"name": "e", "n": "e", "url": "url", "u": "url", "referrer": "ref", "r": "ref", "w": "w"}
MAX_DOMAINS = 10

Problem = tuple[BadReason, str]


def _object(body: bytes) -> tuple[dict | None, Problem | None]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, (BadReason.BODY_NOT_JSON, "body is not valid JSON")
    if not isinstance(data, dict):
        return None, (BadReason.BODY_NOT_JSON, "body must be a JSON object")
    return data, None


def _props(value) -> tuple[dict[str, str], Problem | None]:
    """Properties as p.<key> parameters; a non-scalar value is kept as its JSON text."""
    if value is None or value == "":
        return {}, None
    if isinstance(value, str):  # Plausible's tracker sends them as a JSON object's text
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return {}, (BadReason.BAD_FIELD_TYPE, "props is not a JSON object")
    if not isinstance(value, dict):
        return {}, (BadReason.BAD_FIELD_TYPE, "props must be a JSON object")
    out = {}
    for key, item in value.items():
        text = scalar_text(item)
        out[f"{PROP_PREFIX}{key}"] = text if text is not None else orjson.dumps(item).decode()
    return out, None


def _fields(data: dict, names: dict[str, str]) -> tuple[dict[str, str], Problem | None]:
    params = {}
    for name, ours in names.items():
        value = data.get(name)
        if value is None or ours in params:
            continue
        text = scalar_text(value)
        if text is None:
            return {}, (BadReason.BAD_FIELD_TYPE, f"field {name!r} must be a string")
        params[ours] = text
    return params, None


def beacon_params(body: bytes) -> tuple[dict[str, str], Problem | None]:
    """A /collect body: a JSON object whose known fields are scalars, and its ``props``."""
    data, problem = _object(body)
    if problem:
        return {}, problem
    params, problem = _fields(data, {name: name for name in BEACON_FIELDS})
    if problem:
        return {}, problem
    props, problem = _props(data.get("props"))
    return ({**params, **props}, None) if not problem else ({}, problem)


def plausible_params(body: bytes) -> tuple[list[dict[str, str]], Problem | None]:
    """A Plausible Events API body -> one parameter set per site it names."""
    data, problem = _object(body)
    if problem:
        return [], problem
    params, problem = _fields(data, PLAUSIBLE_FIELDS)
    if problem:
        return [], problem
    props, problem = _props(data.get("props", data.get("p", data.get("m"))))
    if problem:
        return [], problem
    revenue = data.get("revenue", data.get("$"))
    if isinstance(revenue, dict):  # {"currency": "EUR", "amount": 10.5}: kept as two properties
        props |= {
            f"{PROP_PREFIX}revenue_{k}": scalar_text(v) or "" for k, v in revenue.items() if k in ("currency", "amount")
        }
    domain = scalar_text(data.get("domain", data.get("d")))
    if not domain:
        return [], (BadReason.MISSING_SITE, "domain is missing: name the site as Plausible's `domain`")
    sites = [d.strip() for d in domain.split(",") if d.strip()][:MAX_DOMAINS]
    return [{**params, **props, "site": site} for site in sites], None
