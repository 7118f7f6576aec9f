"""Golden tables of realistic UAs, URLs and referrers; and row == vectorized, always."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.enrich import CLEAN_COLUMNS, OUTPUT_COLUMNS, dedupe_key, enrich_event, enrich_frame
from events.rules import Rules
from events.urls import parse_page_url, parse_referrer
from events.useragent import bot_matcher, parse_user_agent

pytestmark = pytest.mark.fast
GOLDEN = Path(__file__).parent / "golden"


def golden_user_agents():
    for line in (GOLDEN / "user_agents.csv").read_text().splitlines():
        if line and not line.startswith("#"):
            ua, browser, major, os_, os_major, device, bot = line.split("|")
            yield pytest.param(ua, (browser, major, os_, os_major, device, bot == "true"), id=ua[:60] or "empty")


@pytest.mark.parametrize("ua,expected", list(golden_user_agents()))
def test_user_agent_golden(ua, expected):
    info = parse_user_agent(ua)
    got = (info.browser, info.browser_major, info.os, info.os_major, info.device, info.is_bot)
    if expected[4] == "bot":  # for bots only the verdict and class are the contract
        assert got[4:] == expected[4:]
    else:
        assert got == expected


def test_the_bot_list_gives_is_bots_own_verdict_on_every_ua():
    """Our matcher of is-bot's patterns (lower-cased ASCII UAs, re, anchored ones tried at the
    start only) against is-bot's own (one regex alternation, IGNORECASE): the same verdict on
    the golden UAs, the demo traffic's long tail of builds, and their case-mangled, non-ASCII
    and spoilt variants."""
    from is_bot import Bots

    from pixel.demo import USER_AGENTS, TrafficModel

    theirs, ours = Bots(), bot_matcher(Bots().patterns)
    uas = {param.values[0] for param in golden_user_agents()}
    uas |= {ua for _ip, ua in TrafficModel(sites=5, seed=7, visitors=5000).visitors} | {ua for ua, _ in USER_AGENTS}
    uas |= {
        f(ua)
        for ua in list(uas)
        for f in (
            str.upper,
            str.swapcase,
            lambda u: u.replace("o", "ö"),
            lambda u: "İ" + u,
            lambda u: u[:49],
            lambda u: u + "|",
            lambda u: u[::-1],
        )
    }
    uas |= {
        "",
        "Googlebot",
        "GOOGLE",
        "Mozilla/5.0 (compatible)",
        "x" * 50,
        "x" * 49,
        "İ" * 49,
        "K" * 60,
        "bot",
        "cubot",
    }
    assert len(uas) > 5000
    verdicts = {ua: (theirs.is_bot(ua), ours(ua)) for ua in uas}
    assert [ua for ua, (a, b) in verdicts.items() if a != b] == []
    assert 100 < sum(a for a, _ in verdicts.values()) < len(uas) - 100  # both kinds are well represented


def test_the_bot_matcher_keeps_a_patterns_meaning():
    match = bot_matcher(["^abc|xyz", "^[0-9]+$", "(?<!ab|c)d"])  # an anchored alternation; a look-behind re can't take
    assert match("abc-") and match("--xyz") and match("123") and not match("12a")
    assert match("--d") and not match("abd") and match("ABC") and match("ÄBC XYZ")
    with pytest.raises(ValueError, match="lower-case ASCII"):
        bot_matcher(["Bot"])


@pytest.mark.parametrize(
    "url,host,path,utm_source",
    [
        ("https://www.Shop.example/Blog/Post?id=3#c", "shop.example", "/Blog/Post", ""),
        ("http://shop.example", "shop.example", "/", ""),
        ("https://shop.example/?utm_source=hn&utm_medium=social&utm_campaign=launch", "shop.example", "/", "hn"),
        ("https://sub.shop.example:8443/a/b/", "sub.shop.example", "/a/b/", ""),
        ("https://[2001:db8::1]/x", "2001:db8::1", "/x", ""),
    ],
)
def test_page_url_golden(url, host, path, utm_source):
    page = parse_page_url(url)
    assert (page.host, page.path, page.utm[0]) == (host, path, utm_source)


@pytest.mark.parametrize(
    "url", ["", "shop.example/x", "ftp://shop.example/x", "javascript:alert(1)", "https://", "http://[::1"]
)
def test_invalid_page_urls(url):
    assert parse_page_url(url) is None


@pytest.mark.parametrize(
    "referrer,source,cls,host",
    [
        ("", "Direct / None", "direct", ""),
        ("https://www.google.com/", "Google", "search", "google.com"),
        ("https://www.google.co.uk/search?q=x", "Google", "search", "google.co.uk"),
        ("https://duckduckgo.com/", "DuckDuckGo", "search", "duckduckgo.com"),
        ("https://t.co/abc123", "Twitter", "social", "t.co"),
        ("https://news.ycombinator.com/item?id=1", "Hacker News", "social", "news.ycombinator.com"),
        ("https://old.reddit.com/r/selfhosted/", "Reddit", "social", "old.reddit.com"),
        ("https://mail.google.com/mail/u/0/", "Gmail", "email", "mail.google.com"),
        ("https://www.shop.example/pricing", "Internal", "internal", "shop.example"),
        ("https://example-blog.net/post/42", "example-blog.net", "other", "example-blog.net"),
        ("android-app://com.slack/", "com.slack", "other", "com.slack"),
        ("not a url", "Direct / None", "direct", ""),
        ("https://google.evil.example/", "google.evil.example", "other", "google.evil.example"),
    ],
)
def test_referrer_golden(referrer, source, cls, host):
    ref = parse_referrer(referrer, "shop.example")
    assert (ref.source, ref.source_class, ref.host) == (source, cls, host)


def raw(**kw):
    event = {
        "v": 1,
        "event_id": "e1",
        "ts": 1_795_507_200_000,
        "site": "shop.example",
        "event": "pageview",
        "url": "https://shop.example/",
        "referrer": "",
        "ua": "curl/8.5.0",
        "ip_trunc": "1.2.3.0",
        "visitor_id": "v1",
        "uid": "",
        "eid": "",
        "lang": "en",
        "dnt": False,
    }
    event.update(kw)
    return event


def test_bad_rows_have_typed_reasons():
    assert enrich_event(raw(site=""))[1][0].value == "missing_site"
    assert enrich_event(raw(url="mailto:x@y"))[1][0].value == "invalid_url"
    clean, bad = enrich_event(raw())
    assert bad is None and clean["is_bot"] and clean["device"] == "bot"


def test_campaign_tags_name_the_source():
    clean, _ = enrich_event(
        raw(url="https://shop.example/?utm_source=newsletter&utm_medium=email", referrer="https://mail.google.com/")
    )
    assert (clean["source"], clean["source_class"]) == ("newsletter", "email")


def test_dedupe_key_scopes_client_ids_to_the_site():
    assert dedupe_key("a", "e1", "c9") == dedupe_key("a", "e2", "c9") != dedupe_key("b", "e1", "c9")
    assert dedupe_key("a", "e1", "") != dedupe_key("a", "e2", "")


UAS = [
    line.split("|")[0]
    for line in (GOLDEN / "user_agents.csv").read_text().splitlines()
    if line and not line.startswith("#")
]
raw_events = st.builds(
    raw,
    event_id=st.text(min_size=1, max_size=8),
    site=st.sampled_from(["", "shop.example", "blog.example"]),
    url=st.one_of(
        st.sampled_from(
            [
                "https://shop.example/a?utm_source=x&utm_medium=cpc",
                "https://shop.example/a?utm_source=facebook&utm_medium=paid_social",
                "https://shop.example/?gclid=abc&utm_campaign=cross-network",
                "https://www.blog.example/",
                "nope",
                "",
                "http://shop.example/b#f",
            ]
        ),
        st.text(max_size=40),
    ),
    referrer=st.one_of(
        st.sampled_from(["", "https://www.google.de/", "https://shop.example/x", "https://t.co/y"]),
        st.text(max_size=30),
    ),
    ua=st.sampled_from(UAS),
    eid=st.sampled_from(["", "c1"]),
    ip_trunc=st.one_of(
        st.sampled_from(["8.8.8.0", "81.2.69.0", "2a00:1450:4001::", "10.0.0.0", ""]), st.text(max_size=12)
    ),
    dnt=st.booleans(),
    w=st.one_of(st.none(), st.integers(-5, 200_000), st.sampled_from(["800", "x", 1.5])),
    props=st.sampled_from(["", '{"plan":"pro"}', '{"b":1,"a":true}', "[1]", "not json", '{"x":{"y":1}}', '{"":"e"}']),
)


@settings(max_examples=60, deadline=None)
@given(events=st.lists(raw_events, min_size=1, max_size=30))
def test_vectorized_equals_row_by_row(events):
    frame = enrich_frame(pd.DataFrame(events))
    assert list(frame.columns) == OUTPUT_COLUMNS and len(frame) == len(events)
    for event, (_, row) in zip(events, frame.iterrows()):
        clean, bad = enrich_event(event)
        if bad:
            assert row["bad_reason"] == bad[0].value
        else:
            assert row["bad_reason"] is None
            assert {c: dict(row[c]) if c == "props" else row[c] for c in CLEAN_COLUMNS} == clean


def test_frame_tolerates_missing_optional_columns():
    frame = enrich_frame(pd.DataFrame({"event_id": ["a"], "ts": [1], "site": ["s"], "url": ["https://s/"]}))
    assert frame.loc[0, "device"] == "other" and frame.loc[0, "source"] == "Direct / None"


def test_a_frame_of_only_invalid_urls_is_all_bad_rows():
    """Regression: pandas turned an all-None page column into NaN floats and the frame crashed."""
    frame = enrich_frame(pd.DataFrame({"event_id": ["a", "b"], "ts": [1, 2], "site": ["s", ""], "url": ["nope", ""]}))
    assert frame["bad_reason"].tolist() == ["invalid_url", "missing_site"]


CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
)
KIOSK = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36 AcmeKiosk/3"


def test_the_operators_bot_rules_make_a_matching_user_agent_a_bot_in_every_form():
    rules = Rules(bot_user_agents=("^curl/", "ACMEKIOSK/\\d"))  # case-insensitive, like the built-in list
    events = [
        {"event_id": f"e{i}", "ts": 1, "site": "s", "url": "https://s/", "ua": ua}
        for i, ua in enumerate([KIOSK, "curl/8.1", CHROME_UA, ""])
    ]
    assert [enrich_event(e)[0]["is_bot"] for e in events] == [False, True, False, False]  # curl: built-in
    ruled = [enrich_event(e, rules)[0] for e in events]
    assert [(c["is_bot"], c["device"]) for c in ruled] == [
        (True, "bot"),
        (True, "bot"),
        (False, "desktop"),
        (False, "other"),
    ]
    assert ruled[0]["browser"] == "Chrome"  # the rest of the verdict stays
    frame = enrich_frame(pd.DataFrame(events), rules=rules)
    assert frame["is_bot"].tolist() == [c["is_bot"] for c in ruled]
    assert frame["device"].tolist() == [c["device"] for c in ruled]


def test_bot_rules_are_checked_when_the_settings_are_read(monkeypatch):
    from pydantic import ValidationError

    from core.settings import Settings

    monkeypatch.setenv("PIXEL_BOT_USER_AGENTS", '["auditor/", "^internal-crawler"]')
    assert Settings().rules == Rules(bot_user_agents=("auditor/", "^internal-crawler"))
    with pytest.raises(ValidationError, match=r"bad regular expression 'auditor\('"):
        Settings(bot_user_agents=["auditor("])
    with pytest.raises(ValidationError, match="would match every user agent"):
        Settings(bot_user_agents=[""])
    assert Rules(("a",)).fingerprint() != Rules(("b",)).fingerprint() == Rules(("b",)).fingerprint()
