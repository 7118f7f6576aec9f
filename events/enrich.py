"""Raw event -> clean event: the one set of rules every runner uses.

- ``enrich_event(raw)``: one event (tests, small tools).
- ``enrich_frame(df)``: a pandas DataFrame of raw events -> clean columns plus ``bad_reason`` /
  ``bad_detail`` (the Flink job's vectorized UDF and the Spark job's ``mapInPandas`` call this).
  Work is done once per distinct UA / URL / referrer in the frame: real traffic repeats them.

Bots are not bad rows: they are valid events with ``is_bot`` true (and device ``bot``); each
layer drops them from visitor counts and counts them separately.
"""
from __future__ import annotations

import pandas as pd

from events.badrows import BadReason
from events.urls import UTM_FIELDS, parse_page_url, parse_referrer
from events.useragent import parse_user_agent

# The clean event schema (name, type). Types: "string", "long", "boolean"; both Spark and
# pyarrow schemas are derived from this list, so there is one definition.
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
    ("browser", "string"),
    ("browser_major", "string"),
    ("os", "string"),
    ("os_major", "string"),
    ("device", "string"),  # desktop | mobile | tablet | bot | other
    ("is_bot", "boolean"),
    ("visitor_id", "string"),
    ("uid", "string"),
    ("eid", "string"),
    ("ip_trunc", "string"),
    ("lang", "string"),
    ("dnt", "boolean"),
]
CLEAN_COLUMNS = [name for name, _ in CLEAN_SCHEMA]
OUTPUT_COLUMNS = CLEAN_COLUMNS + ["bad_reason", "bad_detail"]
_PASSTHROUGH = ("event_id", "ts", "site", "event", "url", "referrer", "visitor_id", "uid", "eid", "ip_trunc", "lang", "dnt")
_CAMPAIGN_CLASS = {"email": "email", "e-mail": "email", "newsletter": "email", "social": "social",
                   "cpc": "search", "ppc": "search", "paid_search": "search", "organic": "search"}


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


def enrich_event(raw: dict) -> tuple[dict | None, tuple[BadReason, str] | None]:
    """One raw event -> (clean event, None) or (None, (reason, detail))."""
    site = raw.get("site") or ""
    if not site:
        return None, (BadReason.MISSING_SITE, "site is empty")
    page = parse_page_url(raw.get("url") or "")
    if page is None:
        return None, (BadReason.INVALID_URL, f"url={str(raw.get('url'))[:200]!r}")
    ref = parse_referrer(raw.get("referrer") or "", page.host)
    ua = parse_user_agent(raw.get("ua") or "")
    source, source_class = source_of(page.utm[0], page.utm[1], ref.source, ref.source_class)
    clean = {name: raw.get(name, "") for name in _PASSTHROUGH}
    clean["dnt"] = bool(raw.get("dnt", False))
    clean.update(
        dedupe_key=dedupe_key(site, raw["event_id"], raw.get("eid") or ""),
        event=raw.get("event") or "pageview",
        host=page.host, path=page.path, **dict(zip(UTM_FIELDS, page.utm)),
        referrer_host=ref.host, source=source, source_class=source_class,
        browser=ua.browser, browser_major=ua.browser_major, os=ua.os, os_major=ua.os_major,
        device=ua.device, is_bot=ua.is_bot,
    )
    return {name: clean[name] for name in CLEAN_COLUMNS}, None


def enrich_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """Vectorized enrich_event: same rules, computed once per distinct value in the frame.

    Input: raw-event columns (missing optional columns are treated as empty). Output: one row per
    input row, in order, with OUTPUT_COLUMNS; rows with a ``bad_reason`` carry no enrichment.
    """
    n = len(raw)
    col = {name: _text(raw, name, n) for name in ("event_id", "site", "event", "url", "referrer", "ua",
                                                   "visitor_id", "uid", "eid", "ip_trunc", "lang")}
    out = pd.DataFrame(index=raw.index)

    pages = {u: parse_page_url(u) for u in set(col["url"])}  # not .unique(): pandas hashes "\x00" as ""
    # Built as object Series by hand: Series.map(dict) turns an all-None result into float NaN.
    page = pd.Series([pages[u] for u in col["url"]], index=raw.index, dtype=object)
    host = page.map(lambda p: p.host if p is not None else "")
    bad = pd.Series([None] * n, index=raw.index, dtype=object)
    detail = pd.Series([None] * n, index=raw.index, dtype=object)
    invalid_url = page.isna()
    bad[invalid_url] = BadReason.INVALID_URL.value
    detail[invalid_url] = "url=" + col["url"][invalid_url].str.slice(0, 200).map(repr)
    missing_site = col["site"] == ""
    bad[missing_site] = BadReason.MISSING_SITE.value  # takes precedence, as in enrich_event
    detail[missing_site] = "site is empty"
    ok = bad.isna()

    for name in ("event_id", "site", "url", "referrer", "visitor_id", "uid", "eid", "ip_trunc", "lang"):
        out[name] = col[name]
    out["ts"] = pd.to_numeric(raw["ts"], errors="coerce").fillna(0).astype("int64") if "ts" in raw else 0
    out["event"] = col["event"].where(col["event"] != "", "pageview")
    out["dnt"] = raw["dnt"].astype("boolean").fillna(False).astype(bool) if "dnt" in raw else False
    out["dedupe_key"] = [dedupe_key(s, e, c) for s, e, c in zip(col["site"], col["event_id"], col["eid"])]
    out["host"] = host.where(ok, "")
    out["path"] = page.map(lambda p: p.path if p is not None else "").where(ok, "")
    for i, field in enumerate(UTM_FIELDS):
        out[field] = page.map(lambda p, i=i: p.utm[i] if p is not None else "").where(ok, "")

    # (referrer, page host) pairs: the same referrer is "internal" on its own site only.
    ref = pd.Series([parse_referrer(r, h) for r, h in zip(col["referrer"], host)], index=raw.index, dtype=object)
    out["referrer_host"] = ref.map(lambda r: r.host).where(ok, "")
    sources = [source_of(us, um, r.source, r.source_class)
               for us, um, r in zip(out["utm_source"], out["utm_medium"], ref)]
    out["source"] = pd.Series([s for s, _ in sources], index=raw.index).where(ok, "")
    out["source_class"] = pd.Series([c for _, c in sources], index=raw.index).where(ok, "")

    uas = {u: parse_user_agent(u) for u in set(col["ua"])}
    info = pd.Series([uas[u] for u in col["ua"]], index=raw.index, dtype=object)
    for name in ("browser", "browser_major", "os", "os_major", "device"):
        out[name] = info.map(lambda i, name=name: getattr(i, name)).where(ok, "")
    out["is_bot"] = info.map(lambda i: i.is_bot).astype(bool) & ok
    out["bad_reason"] = bad
    out["bad_detail"] = detail
    return out[OUTPUT_COLUMNS]


def _text(df: pd.DataFrame, name: str, n: int) -> pd.Series:
    if name not in df:
        return pd.Series([""] * n, index=df.index, dtype=object)
    return df[name].fillna("").astype(str)
