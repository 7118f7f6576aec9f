"""The analytics store's one table, and the Stats API properties it answers.

One row per clean event of a closed day (``hits``), carrying the attributes of the visit it
belongs to, so any combination of event and visit properties is a WHERE clause and a GROUP BY
over one site's rows. Adding a property is a change here (and in the loader, which fills the
column): the query compiler and the API take their closed sets from PROPERTIES.
"""

from __future__ import annotations

from dataclasses import dataclass

from events.urls import UTM_FIELDS


@dataclass(frozen=True)
class Property:
    column: str  # the hits column
    source: str  # the clean-event column it comes from
    scope: str  # "event": the hit's own value; "visit": the visit's (its entry hit's), on every hit


_VISIT_TAKEN_FROM_ENTRY = ["source", "referrer", *UTM_FIELDS]
# Plausible's property names -> where they live.
PROPERTIES: dict[str, Property] = {
    "event:name": Property("event", "event", "event"),
    "event:page": Property("page", "path", "event"),
    "event:hostname": Property("hostname", "host", "event"),
    "visit:entry_page": Property("entry_page", "path", "visit"),
    "visit:exit_page": Property("exit_page", "path", "visit"),
    "visit:source": Property("source", "source", "visit"),
    "visit:referrer": Property("referrer", "referrer", "visit"),
    **{f"visit:{name}": Property(name, name, "visit") for name in UTM_FIELDS},
    "visit:browser": Property("browser", "browser", "visit"),
    "visit:browser_version": Property("browser_version", "browser_major", "visit"),
    "visit:os": Property("os", "os", "visit"),
    "visit:os_version": Property("os_version", "os_major", "visit"),
    "visit:device": Property("device", "device", "visit"),
}
ENTRY_COLUMNS = [p.column for p in PROPERTIES.values() if p.source in _VISIT_TAKEN_FROM_ENTRY]

HITS_SCHEMA: list[tuple[str, str]] = [
    ("day", "date"),
    ("site", "string"),
    ("ts", "long"),  # ms since epoch, UTC
    ("visitor", "long"),  # a number per visitor id and day (null: the hit had no id)
    ("visit", "long"),  # a number per visit and day
    ("visit_hits", "long"),  # hits in the hit's visit (1: a bounce)
    ("visit_duration_ms", "long"),  # last hit - first hit of the visit
    *dict.fromkeys((p.column, "string") for p in PROPERTIES.values()),
]
HITS_COLUMNS = [name for name, _ in HITS_SCHEMA]
# The clean-event columns the loader reads.
CLEAN_INPUTS = ["site", "ts", "visitor_id", *dict.fromkeys(p.source for p in PROPERTIES.values())]
