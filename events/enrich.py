"""Raw event -> clean event: the one set of rules every runner uses.

- ``enrich_event(raw)``: one event (tests, small tools).
- ``enrich_table(table)``: an Arrow table of raw events -> clean columns plus ``bad_reason`` /
  ``bad_detail`` (the Spark job's ``mapInPandas`` step calls this on the table it parsed).
- ``enrich_frame(df)``: the same for a pandas DataFrame (the Flink job's vectorized UDF).
  Work is done once per distinct UA / URL / referrer in the batch: real traffic repeats them.

Bots are not bad rows: they are valid events with ``is_bot`` true (and device ``bot``); each
layer drops them from visitor counts and counts them separately.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from events.badrows import BadReason
from events.channels import channel_of
from events.geo import LOCATION_FIELDS, Location, geo_locator, locate
from events.props import (
    MAX_SCREEN_WIDTH,
    SCREEN_BOUNDS,
    SCREEN_CLASSES,
    clean_props,
    props_map,
    screen_class,
    screen_width,
)
from events.rules import NO_RULES, Rules
from events.schema import ARROW_TYPES, arrow_schema
from events.urls import UTM_FIELDS, parse_page_url, parse_referrer
from events.useragent import user_agent_info

# The clean event schema (name, type). Types: "string", "long", "boolean" ("date", "binary" elsewhere);
# every engine's form of it is derived from this list (events.schema), so there is one definition.
CLEAN_SCHEMA: list[tuple[str, str]] = [
    ("event_id", "string"),
    ("dedupe_key", "string"),  # client eid (scoped to the site) when given, else event_id
    ("ts", "long"),  # ms since epoch, UTC, collector clock
    ("site", "string"),
    ("event", "string"),
    ("url", "string"),
    ("host", "string"),  # page host, lower-case, no "www."
    ("path", "string"),  # page path, no query or fragment
    *((f, "string") for f in UTM_FIELDS),
    ("referrer", "string"),
    ("referrer_host", "string"),
    ("source", "string"),  # "Google", "Twitter", a host, "Internal", or "Direct / None"
    ("source_class", "string"),  # direct | search | social | email | internal | other
    ("channel", "string"),  # Plausible's channel group (events.channels): "Organic Search", ...
    ("browser", "string"),
    ("browser_major", "string"),
    ("os", "string"),
    ("os_major", "string"),
    ("device", "string"),  # desktop | mobile | tablet | bot | other
    ("screen", "string"),  # Mobile | Tablet | Laptop | Desktop by the reported width; "" unknown
    ("country", "string"),  # ISO 3166-1 alpha-2 of the network address (events.geo), "" unknown
    ("region", "string"),  # the region's name
    ("city", "string"),
    ("is_bot", "boolean"),
    ("visitor_id", "string"),
    ("uid", "string"),
    ("eid", "string"),
    ("ip_trunc", "string"),
    ("lang", "string"),
    ("dnt", "boolean"),
    ("props", "map"),  # custom properties, string -> string; empty for none
]
CLEAN_COLUMNS = [name for name, _ in CLEAN_SCHEMA]
_PASSTHROUGH = (
    "event_id",
    "ts",
    "site",
    "event",
    "url",
    "referrer",
    "visitor_id",
    "uid",
    "eid",
    "ip_trunc",
    "lang",
    "dnt",
)
_PASSTHROUGH_TEXT = ("event_id", "site", "url", "referrer", "visitor_id", "uid", "eid", "ip_trunc", "lang")
_TEXT_INPUTS = (*_PASSTHROUGH_TEXT, "event", "ua", "props")
# What enrichment returns per raw event: the clean event, or why it is bad.
ENRICHED_SCHEMA = CLEAN_SCHEMA + [("bad_reason", "string"), ("bad_detail", "string")]
OUTPUT_COLUMNS = [name for name, _ in ENRICHED_SCHEMA]
OUTPUT_ARROW_SCHEMA = arrow_schema(ENRICHED_SCHEMA)
_CAMPAIGN_CLASS = {
    "email": "email",
    "e-mail": "email",
    "newsletter": "email",
    "social": "social",
    "cpc": "search",
    "ppc": "search",
    "paid_search": "search",
    "organic": "search",
}


def dedupe_key(site: str, event_id: str, eid: str) -> str:
    """A retried client event (same eid on the same site) dedupes; otherwise each hit is unique."""
    return f"c:{site}:{eid}" if eid else f"s:{event_id}"


def source_of(utm_source: str, utm_medium: str, referrer_source: str, referrer_class: str) -> tuple[str, str]:
    """A tagged campaign (utm_source) names the source, as in Plausible; else the referrer."""
    if not utm_source:
        return referrer_source, referrer_class
    cls = _CAMPAIGN_CLASS.get(utm_medium.lower())
    if cls is None:
        cls = referrer_class if referrer_class not in ("direct", "internal") else "other"
    return utm_source, cls


def enrich_event(raw: dict, rules: Rules = NO_RULES) -> tuple[dict | None, tuple[BadReason, str] | None]:
    """One raw event -> (clean event, None) or (None, (reason, detail)), by the built-in rules and
    the operator's (events.rules)."""
    site = raw.get("site") or ""
    if not site:
        return None, (BadReason.MISSING_SITE, "site is empty")
    page = parse_page_url(raw.get("url") or "")
    if page is None:
        return None, (BadReason.INVALID_URL, f"url={str(raw.get('url'))[:200]!r}")
    ref = parse_referrer(raw.get("referrer") or "", page.host)
    ua = user_agent_info(raw.get("ua") or "", rules.bot_user_agents)
    source, source_class = source_of(page.utm[0], page.utm[1], ref.source, ref.source_class)
    channel = channel_of(source, source_class, page.utm[1], page.utm[2], page.click_id)
    clean = {name: raw.get(name, "") for name in _PASSTHROUGH}
    clean["dnt"] = bool(raw.get("dnt", False))
    clean.update(
        dedupe_key=dedupe_key(site, raw["event_id"], raw.get("eid") or ""),
        event=raw.get("event") or "pageview",
        host=page.host,
        path=page.path,
        **dict(zip(UTM_FIELDS, page.utm)),
        referrer_host=ref.host,
        source=source,
        source_class=source_class,
        channel=channel,
        browser=ua.browser,
        browser_major=ua.browser_major,
        os=ua.os,
        os_major=ua.os_major,
        device=ua.device,
        is_bot=ua.is_bot,
        **locate(raw.get("ip_trunc") or "")._asdict(),
        screen=screen_class(screen_width(raw.get("w"))),
        props=props_map(clean_props(raw.get("props") or "")),
    )
    return {name: clean[name] for name in CLEAN_COLUMNS}, None


def enrich_table(raw: pa.Table, rules: Rules = NO_RULES) -> pa.Table:
    """Vectorized enrich_event on Arrow: same rules, computed once per distinct value in the table.

    Input: a table of raw-event columns typed as RAW_SCHEMA (missing optional columns and nulls
    are treated as empty). Output: one row per input row, in order, with OUTPUT_COLUMNS; rows
    with a ``bad_reason`` carry no enrichment.

    Each rule runs once per distinct URL, (URL, referrer) pair and UA; Arrow spreads the answers
    back to the rows (dictionary codes, take). No per-row Python object is made, so the batch
    job hands Spark the columns without converting them, and pass-through columns stay as read.
    """
    n = raw.num_rows
    text = {name: _text(raw, name, n) for name in _TEXT_INPUTS}

    url_codes, urls = _codes(text["url"])
    pages = [parse_page_url(u) for u in urls]
    page_host = [p.host if p is not None else "" for p in pages]
    site_ok = pc.not_equal(text["site"], "").to_numpy(zero_copy_only=False)
    url_ok = np.array([p is not None for p in pages], dtype=bool)[url_codes]
    ok = site_ok & url_ok
    bad = np.full(n, None, dtype=object)
    detail = np.full(n, None, dtype=object)
    if not ok.all():  # bad rows are rare: their details are built per row
        invalid_url = ~url_ok
        bad[invalid_url] = BadReason.INVALID_URL.value
        detail[invalid_url] = [f"url={urls[c][:200]!r}" for c in url_codes[invalid_url]]
        bad[~site_ok] = BadReason.MISSING_SITE.value  # takes precedence, as in enrich_event
        detail[~site_ok] = "site is empty"

    def spread(per_value: list, codes: np.ndarray, typ: pa.DataType = pa.string(), empty="") -> pa.Array:
        """Per-distinct answers -> per-row column; rows that are bad get ``empty``."""
        return pa.array([*per_value, empty], typ).take(np.where(ok, codes, len(per_value)))

    out = {name: text[name] for name in _PASSTHROUGH_TEXT}
    out["ts"] = (
        pc.fill_null(raw.column("ts").combine_chunks(), 0)
        if "ts" in raw.column_names
        else pa.array(np.zeros(n, dtype="int64"))
    )
    out["event"] = pc.if_else(pc.not_equal(text["event"], ""), text["event"], "pageview")
    out["dnt"] = (
        pc.fill_null(raw.column("dnt").combine_chunks(), False)
        if "dnt" in raw.column_names
        else pa.array(np.zeros(n, dtype=bool))
    )
    # dedupe_key(site, event_id, eid), per row in Arrow
    out["dedupe_key"] = pc.if_else(
        pc.not_equal(text["eid"], ""),
        pc.binary_join_element_wise("c", text["site"], text["eid"], ":"),
        pc.binary_join_element_wise("s", text["event_id"], ":"),
    )
    out["host"] = spread(page_host, url_codes)
    out["path"] = spread([p.path if p is not None else "" for p in pages], url_codes)
    for i, field in enumerate(UTM_FIELDS):
        out[field] = spread([p.utm[i] if p is not None else "" for p in pages], url_codes)

    # (page, referrer) pairs: the same referrer is "internal" on its own site only, and a campaign
    # tag on the page names the source.
    ref_codes, referrers = _codes(text["referrer"])
    per_url = max(len(referrers), 1)  # a pair's key: url code * per_url + referrer code
    pair_keys, pair_codes = np.unique(url_codes * per_url + ref_codes, return_inverse=True)
    pairs = [(int(k) // per_url, referrers[int(k) % per_url]) for k in pair_keys]
    refs = [parse_referrer(r, page_host[u]) for u, r in pairs]
    sources = [
        source_of(pages[u].utm[0], pages[u].utm[1], ref.source, ref.source_class) if pages[u] is not None else ("", "")
        for (u, _), ref in zip(pairs, refs)
    ]
    channels = [
        channel_of(s, c, pages[u].utm[1], pages[u].utm[2], pages[u].click_id) if pages[u] is not None else ""
        for (u, _), (s, c) in zip(pairs, sources)
    ]
    out["referrer_host"] = spread([ref.host for ref in refs], pair_codes)
    out["source"] = spread([s for s, _ in sources], pair_codes)
    out["source_class"] = spread([c for _, c in sources], pair_codes)
    out["channel"] = spread(channels, pair_codes)

    # Networks -> places: many networks share a place, so each place's text goes to Arrow once.
    ip_codes, networks = _codes(text["ip_trunc"])
    locate_network = geo_locator()
    place_index: dict[Location, int] = {}
    network_place = np.array([place_index.setdefault(locate_network(n), len(place_index)) for n in networks], np.int64)
    places = list(place_index)
    for i, name in enumerate(LOCATION_FIELDS):
        out[name] = spread([place[i] for place in places], network_place[ip_codes] if len(networks) else ip_codes)

    ua_codes, uas = _codes(text["ua"])
    infos = [user_agent_info(u, rules.bot_user_agents) for u in uas]
    for name in ("browser", "browser_major", "os", "os_major", "device"):
        out[name] = spread([getattr(i, name) for i in infos], ua_codes)
    out["is_bot"] = spread([i.is_bot for i in infos], ua_codes, pa.bool_(), empty=False)
    out["screen"] = _screens(raw, n)
    props_codes, props_texts = _codes(text["props"])
    props_type = ARROW_TYPES["map"]
    out["props"] = spread([list(props_map(clean_props(t)).items()) for t in props_texts], props_codes, props_type, [])
    out["bad_reason"] = pa.array(bad, pa.string())
    out["bad_detail"] = pa.array(detail, pa.string())
    return pa.Table.from_arrays([out[name] for name in OUTPUT_COLUMNS], schema=OUTPUT_ARROW_SCHEMA)


def enrich_frame(raw: pd.DataFrame, columns: list[str] = OUTPUT_COLUMNS, rules: Rules = NO_RULES) -> pd.DataFrame:
    """enrich_table for a pandas DataFrame of raw events (the Flink job's vectorized UDF, tests):
    the output ``columns`` (all by default), one row per input row, index kept.

    Values are taken as the engines hand them over: text columns as text (a non-string value
    becomes its str), ``ts`` as a number (else 0), ``w`` as a number (else none), ``dnt`` as a
    boolean (else false)."""
    n = len(raw)
    inputs = {name: _arrow_text(raw[name].fillna("").astype(str)) for name in _TEXT_INPUTS if name in raw}
    inputs["ts"] = pa.array(
        pd.to_numeric(raw["ts"], errors="coerce").fillna(0).astype("int64").to_numpy()
        if "ts" in raw
        else np.zeros(n, dtype="int64")
    )
    inputs["dnt"] = pa.array(
        raw["dnt"].astype("boolean").fillna(False).astype(bool).to_numpy() if "dnt" in raw else np.zeros(n, dtype=bool)
    )
    if "w" in raw:
        widths = pd.to_numeric(raw["w"], errors="coerce")
        inputs["w"] = pa.array(widths.where(widths.abs() < 2**62).fillna(0).astype("int64").to_numpy())
    frame = enrich_table(pa.table(inputs), rules).select(columns).to_pandas()
    frame.index = raw.index
    return frame


def _screens(raw: pa.Table, n: int) -> pa.Array:
    """The screen class of each row's reported width (column ``w``), "" where there is none."""
    if "w" not in raw.column_names:
        return pa.array([""] * n, pa.string())
    widths = pc.fill_null(raw.column("w").combine_chunks().cast(pa.int64(), safe=False), 0).to_numpy()
    known = (widths > 0) & (widths <= MAX_SCREEN_WIDTH)
    classes = np.array(["", *SCREEN_CLASSES], dtype=object)
    return pa.array(classes[np.where(known, np.searchsorted(SCREEN_BOUNDS, widths, side="right") + 1, 0)], pa.string())


def _codes(values: pa.Array) -> tuple[np.ndarray, list]:
    """(code per row, distinct values). Arrow's dictionary encoding compares whole values (pandas'
    string hash table stops at NUL, so it treated "a" and "a\x00b" as one value)."""
    encoded = values.dictionary_encode()
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary.to_pylist()


def _text(table: pa.Table, name: str, n: int) -> pa.Array:
    """A text column as one Arrow array, null (or absent) as ""."""
    if name not in table.column_names:
        return pa.array([""] * n, pa.string())
    return pc.fill_null(table.column(name).combine_chunks(), "")


def _arrow_text(values: pd.Series) -> pa.Array:
    try:
        return pa.array(values, pa.string())
    except (UnicodeEncodeError, pa.ArrowInvalid):  # lone surrogates: not UTF-8, so not Arrow text
        return pa.array([v.encode("utf-8", "replace").decode("utf-8") for v in values], pa.string())
