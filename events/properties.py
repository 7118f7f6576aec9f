"""The Stats API's properties (Plausible's names) and the columns that carry them: in the
analytics store's hits (serving.store.schema), in the speed layer's rows (events.aggregate), in
Druid. Adding a property is a change here.

A visit property is its visit's value (the entry hit's) in the closed days' hits; the speed
layer can't see visits, so its rows carry the hit's own value (LIVE_PROPERTIES: all but the entry
and exit page).
"""

from __future__ import annotations

from dataclasses import dataclass

from events.props import MAX_KEY
from events.urls import UTM_FIELDS


@dataclass(frozen=True)
class Property:
    column: str  # the hits column
    source: str  # the clean-event column it comes from
    scope: str  # "event": the hit's own value; "visit": the visit's (its entry hit's), on every hit


VISIT_TAKEN_FROM_ENTRY = ["source", "referrer", "channel", *UTM_FIELDS]
# Plausible's property names -> where they live.
PROPERTIES: dict[str, Property] = {
    "event:name": Property("event", "event", "event"),
    "event:page": Property("page", "path", "event"),
    "event:hostname": Property("hostname", "host", "event"),
    "visit:entry_page": Property("entry_page", "path", "visit"),
    "visit:exit_page": Property("exit_page", "path", "visit"),
    "visit:source": Property("source", "source", "visit"),
    "visit:referrer": Property("referrer", "referrer", "visit"),
    "visit:channel": Property("channel", "channel", "visit"),
    **{f"visit:{name}": Property(name, name, "visit") for name in UTM_FIELDS},
    "visit:browser": Property("browser", "browser", "visit"),
    "visit:browser_version": Property("browser_version", "browser_major", "visit"),
    "visit:os": Property("os", "os", "visit"),
    "visit:os_version": Property("os_version", "os_major", "visit"),
    "visit:device": Property("device", "device", "visit"),
    "visit:screen": Property("screen", "screen", "visit"),
    "visit:country": Property("country", "country", "visit"),
    "visit:region": Property("region", "region", "visit"),
    "visit:city": Property("city", "city", "visit"),
}
# Custom properties (events.props) are properties too: ``event:props:<key>``, any key up to
# MAX_KEY characters, read from the hits' ``props`` column (closed days only: the speed rows
# don't carry them).
CUSTOM_PREFIX = "event:props:"


def custom_key(name: str) -> str | None:
    """The key of a custom property's name (``event:props:plan`` -> ``plan``), else None."""
    key = name[len(CUSTOM_PREFIX) :] if name.startswith(CUSTOM_PREFIX) else ""
    return key if 0 < len(key) <= MAX_KEY else None


def is_property(name: str) -> bool:
    return name in PROPERTIES or custom_key(name) is not None


LIVE_PROPERTIES = {
    name: prop for name, prop in PROPERTIES.items() if name not in ("visit:entry_page", "visit:exit_page")
}
# The speed rows' property columns, and the clean-event columns they come from.
LIVE_COLUMNS = {prop.column: prop.source for prop in LIVE_PROPERTIES.values()}
