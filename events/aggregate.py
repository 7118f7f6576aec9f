"""The aggregate row (contract of the pixel.agg topic and of the real-time store).

One row per (window, site, dimension, value): pageviews (deduplicated, bots excluded) and a
visitors HLL sketch. Dimensions follow Plausible's properties. Bots get their own dimension
("bots", value ""), so they're filtered out of every count but still counted.
"""
from __future__ import annotations

# dimension -> the clean-event column whose value it breaks down by ("" = the site total).
DIMENSIONS: dict[str, str] = {
    "total": "",
    "page": "path",
    "source": "source",
    "browser": "browser",
    "os": "os",
    "device": "device",
}
BOTS = "bots"

AGG_SCHEMA: list[tuple[str, str]] = [
    ("window_start", "long"),  # ms since epoch, UTC
    ("window_end", "long"),
    ("site", "string"),
    ("dimension", "string"),  # one of DIMENSIONS, or BOTS
    ("value", "string"),
    ("pageviews", "long"),
    ("visitors_hll", "string"),  # base64 DataSketches HLL (events.sketches)
]
AGG_COLUMNS = [name for name, _ in AGG_SCHEMA]
