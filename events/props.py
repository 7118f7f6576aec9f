"""Custom event properties and the screen: what a page (its script, beacon or pixel) tells about
an event beyond its URL. Pure.

Properties are string -> string, bounded as Plausible bounds them (at most MAX_PROPS, keys up to
MAX_KEY characters, values up to MAX_VALUE): what is over a bound is dropped from the event and
kept, with a typed reason, as a bad row (the collector does that). The raw event carries them as
a JSON object's text with sorted keys ("" when none); the clean event as a map.
"""

from __future__ import annotations

import bisect

import orjson

MAX_PROPS = 30
MAX_KEY = 300
MAX_VALUE = 2000
PROP_PREFIX = "p."  # the pixel's and beacon's parameter names: p.plan=pro

# Plausible's screen classes by the reported width in CSS pixels: below 576 a phone, ...
SCREEN_BOUNDS = (576, 992, 1440)
SCREEN_CLASSES = ("Mobile", "Tablet", "Laptop", "Desktop")
MAX_SCREEN_WIDTH = 100_000


def bounded_props(props: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(kept, dropped): empty keys and those over a bound are dropped, in the order given."""
    kept: dict[str, str] = {}
    dropped: dict[str, str] = {}
    for key, value in props.items():
        if key and len(key) <= MAX_KEY and len(value) <= MAX_VALUE and len(kept) < MAX_PROPS:
            kept[key] = value
        else:
            dropped[key[:MAX_KEY]] = value[:MAX_VALUE]
    return kept, dropped


def props_text(props: dict[str, str]) -> str:
    """The canonical text of properties: a JSON object with sorted keys, "" for none."""
    return orjson.dumps(props, option=orjson.OPT_SORT_KEYS).decode() if props else ""


def scalar_text(value) -> str | None:
    """A JSON scalar as property text (a string as is, a number or boolean as JSON); None for
    null, objects and arrays."""
    if value is None or isinstance(value, (dict, list)):
        return None
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def clean_props(text: str) -> str:
    """Raw properties text -> the clean event's: canonical and within bounds, "" when the text
    is not a JSON object of scalars (the raw event keeps what was sent)."""
    if not text:
        return ""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(data, dict):
        return ""
    props = {key: scalar_text(value) for key, value in data.items()}
    if any(value is None for value in props.values()):
        return ""
    return props_text(bounded_props(props)[0])


def props_map(text: str) -> dict[str, str]:
    """Properties' canonical text (props_text) as the clean event's map."""
    return orjson.loads(text) if text else {}


def screen_width(value: str | int | None) -> int | None:
    """A reported screen width, when it is one (1 to MAX_SCREEN_WIDTH CSS pixels)."""
    try:
        width = int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None
    return width if width is not None and 0 < width <= MAX_SCREEN_WIDTH else None


def screen_class(width: int | None) -> str:
    """Mobile, Tablet, Laptop or Desktop; "" when the width is unknown."""
    if width is None or width <= 0:
        return ""
    return SCREEN_CLASSES[bisect.bisect_right(SCREEN_BOUNDS, width)]
