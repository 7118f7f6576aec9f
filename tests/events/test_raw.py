import orjson
import pytest

from events.badrows import BadReason
from events.raw import FIELD_LIMITS, build_raw_event, check_raw_message, new_event_id

pytestmark = pytest.mark.fast
NOW = 1_795_000_000_000


def build(params, **kw):
    args = dict(
        ts_ms=NOW,
        event_id="e1",
        ua="Mozilla/5.0",
        referer_header="",
        lang="en-US",
        dnt=False,
        ip_trunc="203.0.113.0",
        visitor_id_of=lambda site, ua: f"{site}|{ua}",
        source="get",
    )
    args.update(kw)
    return build_raw_event(params, **args)


def test_contract_fields():
    e = build({"site": "a.com", "url": "https://a.com/x", "ref": "https://g.com/", "uid": "u", "eid": "c1"})
    assert set(e) >= {
        "v",
        "event_id",
        "ts",
        "site",
        "event",
        "url",
        "referrer",
        "ua",
        "ip_trunc",
        "visitor_id",
        "uid",
        "lang",
        "dnt",
    }
    assert e["event"] == "pageview" and e["eid"] == "c1" and e["visitor_id"] == "a.com|Mozilla/5.0"
    assert "trunc" not in e


def test_url_defaults_to_referer_header():
    assert build({"site": "a"}, referer_header="https://a/page")["url"] == "https://a/page"
    assert build({"site": "a", "url": "https://a/x"}, referer_header="https://a/page")["url"] == "https://a/x"


def test_oversized_fields_are_cut_and_flagged():
    e = build({"site": "a", "url": "u" * 5000}, ua="U" * 2000)
    assert len(e["url"]) == FIELD_LIMITS["url"] and len(e["ua"]) == FIELD_LIMITS["ua"]
    assert sorted(e["trunc"]) == ["ua", "url"]


def test_nul_bytes_are_removed():
    assert build({"site": "a\0b"})["site"] == "ab"


def test_event_ids_are_unique_hex():
    ids = {new_event_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) == 32 for i in ids)


@pytest.mark.parametrize(
    "value,reason",
    [
        (None, BadReason.INVALID_JSON),
        (b"{nope", BadReason.INVALID_JSON),
        (b"[1,2]", BadReason.NOT_AN_OBJECT),
        (b'{"v":2,"event_id":"x","ts":1795000000000,"site":"a"}', BadReason.UNSUPPORTED_VERSION),
        (b'{"v":true,"event_id":"x","ts":1795000000000,"site":"a"}', BadReason.UNSUPPORTED_VERSION),
        (b'{"v":1.0,"event_id":"x","ts":1795000000000,"site":"a"}', BadReason.UNSUPPORTED_VERSION),
        (b'{"v":1,"ts":1795000000000,"site":"a"}', BadReason.MISSING_FIELD),
        (b'{"v":1,"event_id":"x","ts":"soon","site":"a"}', BadReason.BAD_FIELD_TYPE),
        (b'{"v":1,"event_id":"x","ts":true,"site":"a"}', BadReason.BAD_FIELD_TYPE),
        (b'{"v":1,"event_id":"x","ts":1000,"site":"a"}', BadReason.BAD_TIMESTAMP),
        (b'{"v":1,"event_id":"x","ts":1895000000000,"site":"a"}', BadReason.BAD_TIMESTAMP),
    ],
)
def test_check_raw_message_rejects_with_a_typed_reason(value, reason):
    event, got, detail = check_raw_message(value, NOW)
    assert event is None and got is reason and detail


def test_check_raw_message_accepts_what_the_collector_builds():
    e = build({"site": "a.com"})
    event, reason, _ = check_raw_message(orjson.dumps(e), NOW)
    assert reason is None and event == e
