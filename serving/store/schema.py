"""The analytics store's one table (the Stats API's properties: events.properties).

One row per clean event of a closed day (``hits``), carrying the attributes of the visit it
belongs to, so any combination of event and visit properties is a WHERE clause and a GROUP BY
over one site's rows. Adding a property is a change here (and in the loader, which fills the
column): the query compiler and the API take their closed sets from PROPERTIES.
"""

from __future__ import annotations

from events.properties import PROPERTIES, VISIT_TAKEN_FROM_ENTRY

ENTRY_COLUMNS = [p.column for p in PROPERTIES.values() if p.source in VISIT_TAKEN_FROM_ENTRY]

HITS_SCHEMA: list[tuple[str, str]] = [
    ("day", "date"),
    ("site", "string"),
    ("ts", "long"),  # ms since epoch, UTC
    ("visitor", "long"),  # a number per visitor id and day (null: the hit had no id)
    ("visit", "long"),  # a number per visit and day
    ("visit_hits", "long"),  # hits in the hit's visit (1: a bounce)
    ("visit_duration_ms", "long"),  # last hit - first hit of the visit
    *dict.fromkeys((p.column, "string") for p in PROPERTIES.values()),
    ("props", "string"),  # the hit's custom properties (a JSON object's text): event:props:<key>
]
HITS_COLUMNS = [name for name, _ in HITS_SCHEMA]
# The clean-event columns the loader reads.
CLEAN_INPUTS = ["site", "ts", "visitor_id", "props", *dict.fromkeys(p.source for p in PROPERTIES.values())]
