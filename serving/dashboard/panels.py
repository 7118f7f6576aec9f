"""What the site page shows: the top-line metrics and the panels, each a few tabs of one property's
breakdown. One list for the page (it renders what /api/config gives) and the export (a CSV per
tab), so both always show the same things."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

TOPLINE = ("visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration")
CHART_METRICS = ("visitors", "pageviews")
ROWS = 10  # a tab's rows on the page
PROPS_TAB = "event:props"  # the tab of custom properties: event:props:<key> for the key chosen
EXPORT_KEYS = 20  # ... the properties the export writes a CSV of (the most used)
EXPORT_ROWS = 1000  # ... in its CSV


@dataclass(frozen=True)
class Tab:
    property: str
    title: str
    file: str  # the export's CSV: <file>.csv
    metrics: tuple[str, ...] = ("visitors", "pageviews")
    filter: str = ""  # a v1 filter the tab adds to the view's

    def filters(self, view: str | None) -> str:
        """The view's filters and the tab's, as one v1 filter string."""
        return ";".join(f for f in (view, self.filter) if f)


@dataclass(frozen=True)
class Panel:
    id: str
    title: str
    tabs: tuple[Tab, ...]


PANELS = (
    Panel(
        "pages",
        "Pages",
        (
            Tab("event:page", "Top pages", "pages"),
            Tab("visit:entry_page", "Entry pages", "entry_pages", ("visitors", "visits")),
            Tab("visit:exit_page", "Exit pages", "exit_pages", ("visitors", "visits")),
        ),
    ),
    Panel(
        "sources",
        "Sources",
        (
            Tab("visit:channel", "Channels", "channels"),
            Tab("visit:source", "Sources", "sources"),
            Tab("visit:utm_medium", "UTM medium", "utm_mediums"),
            Tab("visit:utm_source", "UTM source", "utm_sources"),
            Tab("visit:utm_campaign", "UTM campaign", "utm_campaigns"),
        ),
    ),
    Panel(
        "locations",
        "Locations",
        (
            Tab("visit:country", "Countries", "countries"),  # with the world map
            Tab("visit:region", "Regions", "regions"),
            Tab("visit:city", "Cities", "cities"),
        ),
    ),
    Panel(
        "devices",
        "Devices",
        (
            Tab("visit:browser", "Browsers", "browsers"),
            Tab("visit:os", "Operating systems", "operating_systems"),
            Tab("visit:device", "Devices", "devices"),
            Tab("visit:screen", "Screen sizes", "screen_sizes"),
        ),
    ),
    Panel(
        "goals",
        "Goals and events",
        (
            Tab("event:goal", "Goals", "goals", ("visitors", "events", "conversion_rate")),
            Tab("event:name", "Custom events", "custom_events", ("visitors", "events"), "event:name!=pageview"),
            # A custom property's values: the page lists the keys (PROPS_TAB) and shows one's.
            Tab(PROPS_TAB, "Properties", "properties", ("visitors", "events")),
        ),
    ),
)
TABS = tuple(tab for panel in PANELS for tab in panel.tabs)


def with_key(tab: Tab, key: str) -> Tab:
    """The properties tab for one key: event:props:<key>."""
    return Tab(f"{PROPS_TAB}:{key}", key, f"{tab.file}/{safe_name(key)}", tab.metrics, tab.filter)


def safe_name(key: str) -> str:
    """A file name for any key (letters, digits, - and _; 60 at most)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", key)[:60] or "_"


def panels_config() -> list[dict]:
    return [asdict(panel) for panel in PANELS]
