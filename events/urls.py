"""Page URL and referrer parsing, with the data-driven referrer table (events/data/referrers.csv)."""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qsl, urlsplit

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
# Ad-click ids on a landing URL (events/data/channels.csv names them), the first one present kept.
CLICK_IDS = ("gclid", "gbraid", "wbraid", "msclkid", "dclid", "ttclid", "twclid", "li_fat_id")
SOURCE_CLASSES = ("direct", "search", "social", "email", "internal", "other")
DIRECT = "Direct / None"


class PageUrl(NamedTuple):
    host: str  # lower-case, without "www."
    path: str  # never empty; no query, no fragment
    utm: tuple[str, str, str, str, str]  # in UTM_FIELDS order; "" when absent
    click_id: str = ""  # the name of an ad-click id in the query (CLICK_IDS), "" when none


class Referrer(NamedTuple):
    host: str  # lower-case, without "www."; "" for direct
    source: str  # e.g. "Google", a host for unknown referrers, DIRECT for none
    source_class: str  # one of SOURCE_CLASSES


def _load_table() -> tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]]]:
    exact, any_tld = {}, {}
    with open(Path(__file__).parent / "data" / "referrers.csv", newline="") as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        for row in rows:
            target = any_tld if row["pattern"].endswith(".*") else exact
            target[row["pattern"].removesuffix(".*")] = (row["source"], row["class"])
    return exact, any_tld


_EXACT, _ANY_TLD = _load_table()


def source_classes() -> dict[str, str]:
    """Source name, listed domain and NAME of a NAME.* pattern, lower-case, -> class: how a
    campaign's utm_source names a source ("google", "facebook.com", "Twitter")."""
    named = {source.lower(): cls for source, cls in (*_EXACT.values(), *_ANY_TLD.values())}
    return {name: cls for name, (_, cls) in (_EXACT | _ANY_TLD).items()} | named


# Second-level labels under which country registries sell names (co.uk, com.au, co.jp, ...).
_SECOND_LEVEL = frozenset({"co", "com", "org", "net", "ac", "gov", "edu", "ne", "or", "gob", "go"})


def normalize_host(host: str) -> str:
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


@lru_cache(maxsize=65536)
def parse_page_url(url: str) -> PageUrl | None:
    """None when the URL can't be a web page (not http(s), no host)."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    utm = dict.fromkeys(UTM_FIELDS, "")
    click_id = ""
    if parts.query:
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in utm and not utm[key]:
                utm[key] = value[:256]
            elif key in CLICK_IDS and value and not click_id:
                click_id = key
    return PageUrl(normalize_host(host), parts.path or "/", tuple(utm[f] for f in UTM_FIELDS), click_id)


def classify_host(host: str) -> tuple[str, str] | None:
    """(source, class) from the referrer table: the host or its closest listed parent domain."""
    labels = host.split(".")
    for i in range(len(labels)):
        hit = _EXACT.get(".".join(labels[i:]))
        if hit:
            return hit
        # NAME.* : NAME then a public suffix: one label (google.de) or a second-level
        # registry label plus one (google.co.uk). Not google.evil.example.
        rest = labels[i + 1 :]
        if labels[i] in _ANY_TLD and (len(rest) == 1 or (len(rest) == 2 and rest[0] in _SECOND_LEVEL)):
            return _ANY_TLD[labels[i]]
    return None


@lru_cache(maxsize=65536)
def parse_referrer(referrer: str, page_host: str) -> Referrer:
    if not referrer:
        return Referrer("", DIRECT, "direct")
    try:
        host = normalize_host(urlsplit(referrer.strip()).hostname or "")
    except ValueError:
        host = ""
    if not host:
        return Referrer("", DIRECT, "direct")
    if host == page_host:
        return Referrer(host, "Internal", "internal")
    known = classify_host(host)
    if known:
        return Referrer(host, known[0], known[1])
    return Referrer(host, host, "other")
