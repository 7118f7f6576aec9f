"""The site page's view as files: a ZIP of CSVs (the time series and one per tab, the view's
filters applied) and the view as a Stats API v2 query.

CSV cells from traffic (paths, referrers, UTM values...) that a spreadsheet would read as a
formula (starting with = + - @, tab or carriage return) are escaped with a leading quote."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from dataclasses import replace

from events.properties import custom_key
from serving.dashboard.panels import EXPORT_KEYS, EXPORT_ROWS, PROPS_TAB, TABS, TOPLINE, Tab, with_key
from serving.query import QueryError, parse_period
from serving.stats_api import V1Stats, v1_filters_as_v2

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The chart's grain per period (others: a point per day).
CHART_INTERVALS = {"day": "hour", "6mo": "month", "12mo": "month"}


def safe_cell(value: object) -> object:
    """A text cell a spreadsheet won't run: ``=cmd()`` -> ``'=cmd()``; numbers as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return "" if value is None else value


def csv_bytes(header: list[str], rows: list[list]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([safe_cell(cell) for cell in row] for row in rows)
    return out.getvalue().encode()


def column_of(prop: str) -> str:
    """The breakdown's key for a property, as v1 answers it (page, browser, plan...)."""
    return custom_key(prop) or prop.split(":", 1)[1]


def view_files(v1: V1Stats, site: str, period: str, date: str | None, filters: str | None) -> dict[str, bytes]:
    """File name -> CSV of the view: visitors.csv (the chart's series, every top-line metric),
    then one per tab. A tab the site can't answer (goals, with none defined) has no file."""
    metrics = ",".join(TOPLINE)
    series = v1.timeseries(site, period, date, metrics, filters, CHART_INTERVALS.get(period, "date"))["results"]
    files = {"visitors.csv": csv_bytes(["date", *TOPLINE], [[p["date"], *(p[m] for m in TOPLINE)] for p in series])}
    for tab in _tabs(v1, site, period, date, filters):
        key = column_of(tab.property)
        try:
            rows = v1.breakdown(
                site, tab.property, period, date, ",".join(tab.metrics), tab.filters(filters), EXPORT_ROWS
            )
        except QueryError:  # e.g. event:goal on a site without goals
            continue
        files[f"{tab.file}.csv"] = csv_bytes(
            [key, *tab.metrics], [[r[key], *(r[m] for m in tab.metrics)] for r in rows["results"]]
        )
    return files


def _tabs(v1: V1Stats, site: str, period: str, date: str | None, filters: str | None) -> list[Tab]:
    """Every tab, the properties tab as one per key (the most used)."""
    out = []
    for tab in TABS:
        if tab.property != PROPS_TAB:
            out.append(tab)
            continue
        try:
            keys = v1.analytics.prop_keys(v1.question(site, period, date, "events", filters), EXPORT_KEYS)
        except QueryError:  # under a goal filter
            continue
        names = set()
        for found in keys:
            keyed = with_key(tab, found["key"])
            while keyed.file in names:  # two keys with the same safe name
                keyed = replace(keyed, file=keyed.file + "_")
            names.add(keyed.file)
            out.append(keyed)
    return out


def view_zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def view_query(site: str, period: str, date: str | None, filters: str | None, today: dt.date) -> dict:
    """The view's top-line numbers as a Stats API v2 query (POST /api/v2/query), its dates fixed."""
    days = parse_period(period, date, today)
    return {
        "site_id": site,
        "metrics": list(TOPLINE),
        "date_range": [str(days.first), str(days.last)],
        "filters": v1_filters_as_v2(filters),
    }
