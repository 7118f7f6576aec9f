"""The speed layer's row (contract of the pixel.agg topic and of the real-time stores), and the
batch views' rows.

A speed row holds one window's events of one site with one combination of property values (the
finest grain: any filter and any breakdown is a WHERE and a GROUP BY over such rows): events,
pageviews (events named ``pageview``) and an HLL sketch of their visitors. Bots have one row per
window and site (is_bot, every property empty): counted apart, never in the other rows.
"""

from __future__ import annotations

from events.properties import LIVE_COLUMNS

# dimension -> the clean-event column whose value it breaks down by ("" = the site total).
DIMENSIONS: dict[str, str] = {
    "total": "",
    "page": "path",
    "source": "source",
    "browser": "browser",
    "os": "os",
    "device": "device",
}
# The clean-event columns the dimensions break down by, in DIMENSIONS' order.
DIMENSION_COLUMNS: list[str] = [column for column in DIMENSIONS.values() if column]
BOTS = "bots"

AGG_SCHEMA: list[tuple[str, str]] = [
    ("window_start", "long"),  # ms since epoch, UTC
    ("window_end", "long"),
    ("site", "string"),
    ("is_bot", "boolean"),
    *((column, "string") for column in LIVE_COLUMNS),  # events.properties: page, source, browser, ...
    ("pageviews", "long"),
    ("events", "long"),
    ("visitors_hll", "string"),  # base64 DataSketches HLL (events.sketches)
]
AGG_COLUMNS = [name for name, _ in AGG_SCHEMA]

# A visit (session) ends after this much inactivity, as in Plausible and Google Analytics. Visitor
# ids rotate with the daily salt, so a visit never spans two days.
SESSION_GAP_MS = 30 * 60_000

# What a view row (daily, sessions) is about: its key in every view.
VIEW_KEYS = ["site", "dimension", "value"]

# The batch daily view (views/daily/date=D/): per (site, dimension, value); dimension is one of
# DIMENSIONS, or BOTS (bot hits and bot visitors of the site, value "").
DAILY_SCHEMA: list[tuple[str, str]] = [
    ("site", "string"),
    ("dimension", "string"),
    ("value", "string"),
    ("pageviews", "long"),
    ("visitors", "long"),  # exact distinct visitor ids
    ("visitors_hll", "string"),  # base64 DataSketches HLL of the same ids
]

# The batch sessions view (views/sessions/date=D/): one row per (site, dimension, value), where the
# value is the visit's entry attribute (its first page, source, browser, os, device).
SESSIONS_SCHEMA: list[tuple[str, str]] = [
    ("site", "string"),
    ("dimension", "string"),  # one of DIMENSIONS
    ("value", "string"),
    ("visits", "long"),
    ("bounces", "long"),  # visits of exactly one pageview
    ("pageviews", "long"),  # pageviews within these visits
    ("duration_ms", "long"),  # summed visit durations (last hit - first hit)
]
