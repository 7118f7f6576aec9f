"""Raw event -> clean event: the one set of rules every runner uses.

- ``enrich_event(raw)``: one event (tests, small tools).
- ``enrich_frame(df)``: a pandas DataFrame of raw events -> clean columns plus ``bad_reason`` /
  ``bad_detail`` (the Flink job's vectorized UDF and the Spark job's ``mapInPandas`` call this).
  Work is done once per distinct UA / URL / referrer in the frame: real traffic repeats them.

Bots are not bad rows: they are valid events with ``is_bot`` true (and device ``bot``); each
layer drops them from visitor counts and counts them separately.
"""
from __future__ import annotations

import numpy as np
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

    Each rule runs once per distinct URL, (URL, referrer) pair and UA, and the answers are spread
    back to the rows by integer codes (numpy takes): the per-row Python work is one dict lookup
    per column. Both engines (Flink's UDF, Spark's mapInPandas) spend most of their time here.
    """
    n = len(raw)
    col = {name: _text(raw, name, n) for name in ("event_id", "site", "event", "url", "referrer", "ua",
                                                   "visitor_id", "uid", "eid", "ip_trunc", "lang")}

    url_codes, urls = _codes(col["url"])
    pages = [parse_page_url(u) for u in urls]
    page_host = [p.host if p is not None else "" for p in pages]
    site_ok = (col["site"] != "").to_numpy()
    url_ok = np.array([p is not None for p in pages], dtype=bool)[url_codes] if n else np.zeros(0, dtype=bool)
    ok = site_ok & url_ok
    bad = np.full(n, None, dtype=object)
    detail = np.full(n, None, dtype=object)
    invalid_url = ~url_ok
    bad[invalid_url] = BadReason.INVALID_URL.value
    detail[invalid_url] = [f"url={u[:200]!r}" for u in col["url"].to_numpy()[invalid_url]]
    bad[~site_ok] = BadReason.MISSING_SITE.value  # takes precedence, as in enrich_event
    detail[~site_ok] = "site is empty"

    def spread(per_value: list, codes: np.ndarray, empty="") -> np.ndarray:
        """Per-distinct answers -> per-row column; rows that are bad get ``empty``."""
        column = _objects(per_value)[codes] if n else np.zeros(0, dtype=object)
        column[~ok] = empty
        return column

    out = {name: col[name].to_numpy() for name in ("event_id", "site", "url", "referrer", "visitor_id", "uid",
                                                   "eid", "ip_trunc", "lang")}
    out["ts"] = (pd.to_numeric(raw["ts"], errors="coerce").fillna(0).astype("int64").to_numpy()
                 if "ts" in raw else np.zeros(n, dtype="int64"))
    out["event"] = np.where(col["event"].to_numpy() != "", col["event"].to_numpy(), "pageview").astype(object)
    out["dnt"] = (raw["dnt"].astype("boolean").fillna(False).astype(bool).to_numpy()
                  if "dnt" in raw else np.zeros(n, dtype=bool))
    out["dedupe_key"] = np.array([dedupe_key(s, e, c) for s, e, c in zip(col["site"], col["event_id"], col["eid"])],
                                 dtype=object)
    out["host"] = spread(page_host, url_codes)
    out["path"] = spread([p.path if p is not None else "" for p in pages], url_codes)
    for i, field in enumerate(UTM_FIELDS):
        out[field] = spread([p.utm[i] if p is not None else "" for p in pages], url_codes)

    # (page, referrer) pairs: the same referrer is "internal" on its own site only, and a campaign
    # tag on the page names the source.
    pair_codes, pairs = _codes(zip(url_codes.tolist(), col["referrer"]))
    refs = [parse_referrer(r, page_host[u]) for u, r in pairs]
    sources = [source_of(pages[u].utm[0], pages[u].utm[1], ref.source, ref.source_class) if pages[u] is not None
               else ("", "") for (u, _), ref in zip(pairs, refs)]
    out["referrer_host"] = spread([ref.host for ref in refs], pair_codes)
    out["source"] = spread([s for s, _ in sources], pair_codes)
    out["source_class"] = spread([c for _, c in sources], pair_codes)

    ua_codes, uas = _codes(col["ua"])
    infos = [parse_user_agent(u) for u in uas]
    for name in ("browser", "browser_major", "os", "os_major", "device"):
        out[name] = spread([getattr(i, name) for i in infos], ua_codes)
    out["is_bot"] = spread([i.is_bot for i in infos], ua_codes, empty=False).astype(bool)
    out["bad_reason"] = bad
    out["bad_detail"] = detail
    return pd.DataFrame({name: out[name] for name in OUTPUT_COLUMNS}, index=raw.index)


def _codes(values) -> tuple[np.ndarray, list]:
    """(code per row, distinct values in first-seen order). A dict, not pd.factorize/unique:
    pandas' string hash table stops at NUL, so it treats "a" and "a\x00b" as one value."""
    index: dict = {}
    codes = np.fromiter((index.setdefault(v, len(index)) for v in values), dtype=np.int64)
    return codes, list(index)


def _objects(values: list) -> np.ndarray:
    """A 1-d object array (np.array would build a 2-d one from a list of tuples)."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _text(df: pd.DataFrame, name: str, n: int) -> pd.Series:
    if name not in df:
        return pd.Series([""] * n, index=df.index, dtype=object)
    return df[name].fillna("").astype(str)
