"""POST bodies -> hit parameters: our beacon and Plausible's Events API (long and short keys,
props as an object or as a JSON object's text, several domains), and bad bodies as typed
reasons; custom properties bounded as Plausible bounds them."""

from __future__ import annotations

import orjson
import pytest

from events.badrows import BadReason
from events.props import MAX_KEY, MAX_PROPS, MAX_VALUE, bounded_props, clean_props, screen_class, screen_width
from pixel_api.bodies import beacon_params, plausible_params
from pixel_api.collector import parse_pixel_query, props_of

pytestmark = pytest.mark.fast


def test_plausible_long_and_short_forms_give_the_same_hit():
    long = {
        "name": "Signup",
        "url": "https://a.example/pricing",
        "domain": "a.example",
        "referrer": "https://www.google.com/",
        "props": {"plan": "pro", "seats": 3, "trial": True},
        "revenue": {"currency": "EUR", "amount": 10.5},
    }
    short = {
        "n": "Signup",
        "u": "https://a.example/pricing",
        "d": "a.example",
        "r": "https://www.google.com/",
        "w": 1280,
        "h": 0,
        "p": orjson.dumps({"plan": "pro", "seats": 3, "trial": True}).decode(),  # plausible-tracker's form
        "$": {"currency": "EUR", "amount": 10.5},
    }
    (a,), problem_a = plausible_params(orjson.dumps(long))
    (b,), problem_b = plausible_params(orjson.dumps(short))
    assert problem_a is problem_b is None
    assert b == {**a, "w": "1280"}
    assert a == {
        "e": "Signup",
        "url": "https://a.example/pricing",
        "ref": "https://www.google.com/",
        "site": "a.example",
        "p.plan": "pro",
        "p.seats": "3",
        "p.trial": "true",
        "p.revenue_currency": "EUR",
        "p.revenue_amount": "10.5",
    }


def test_plausible_several_domains_are_one_event_each():
    sites, problem = plausible_params(b'{"n":"pageview","u":"https://a.example/","d":"a.example, b.example"}')
    assert problem is None and [s["site"] for s in sites] == ["a.example", "b.example"]


@pytest.mark.parametrize(
    "body,reason",
    [
        (b"not json", BadReason.BODY_NOT_JSON),
        (b"[1]", BadReason.BODY_NOT_JSON),
        (b'{"n":"pageview","u":"https://a.example/"}', BadReason.MISSING_SITE),
        (b'{"n":"pageview","u":"https://a.example/","d":"a.example","p":"not json"}', BadReason.BAD_FIELD_TYPE),
        (b'{"n":"pageview","u":"https://a.example/","d":"a.example","p":[1]}', BadReason.BAD_FIELD_TYPE),
        (b'{"n":{"x":1},"u":"https://a.example/","d":"a.example"}', BadReason.BAD_FIELD_TYPE),
    ],
)
def test_bad_plausible_bodies_have_a_reason(body, reason):
    sites, problem = plausible_params(body)
    assert sites == [] and problem[0] is reason and problem[1]


def test_beacon_props_and_width():
    params, problem = beacon_params(b'{"site":"a","url":"https://a/","w":390,"props":{"plan":"pro","n":{"x":1}}}')
    assert problem is None
    assert params == {"site": "a", "url": "https://a/", "w": "390", "p.plan": "pro", "p.n": '{"x":1}'}


def test_pixel_query_props():
    params = parse_pixel_query(b"site=a&url=https%3A%2F%2Fa%2F&e=Signup&p.plan=pro&p.two+words=a%26b&w=800&x=1")
    assert props_of(params) == {"plan": "pro", "two words": "a&b"} and params["w"] == "800" and "x" not in params


def test_props_bounds():
    props = {f"k{i}": "v" for i in range(MAX_PROPS + 2)} | {"x" * (MAX_KEY + 1): "v", "long": "v" * (MAX_VALUE + 1)}
    kept, dropped = bounded_props({"": "empty key", **props})
    assert len(kept) == MAX_PROPS and list(kept) == [f"k{i}" for i in range(MAX_PROPS)]
    assert set(dropped) == {"", f"k{MAX_PROPS}", f"k{MAX_PROPS + 1}", "x" * MAX_KEY, "long"}
    # The clean event's text: canonical, within bounds; anything else is no properties.
    assert clean_props('{"b":"2","a":1}') == '{"a":"1","b":"2"}'
    assert clean_props("[1]") == clean_props("nope") == clean_props('{"a":{"b":1}}') == ""


@pytest.mark.parametrize(
    "width,cls",
    [
        (None, ""),
        ("", ""),
        ("x", ""),
        (0, ""),
        (-3, ""),
        (375, "Mobile"),
        (576, "Tablet"),
        (1024, "Laptop"),
        (1440, "Desktop"),
        (10**6, ""),
    ],
)
def test_screen_classes(width, cls):
    assert screen_class(screen_width(width)) == cls


def test_the_collector_keeps_props_and_reports_what_it_drops(tmp_path):
    """Through the collector's routes onto the (in-memory) topics: props within the bounds in the
    raw event, the rest in a props_dropped bad row naming the event; the script is served."""
    from fastapi.testclient import TestClient

    from core.kafka.clients import ensure_topics
    from core.kafka.testing import InMemoryKafka
    from core.settings import Settings
    from pixel_api.app import PixelRoute, create_fastapi
    from pixel_api.collector import Collector
    from tests.harness import wait_until

    settings = Settings(data_dir=tmp_path / "data", raw_partitions=1, retain_until_landed=False)  # no lander here
    kafka = InMemoryKafka()
    ensure_topics(settings, clients=kafka)
    collector = Collector(settings, kafka)
    over = {f"k{i}": "v" for i in range(MAX_PROPS + 1)}
    with TestClient(PixelRoute(create_fastapi(collector), collector)) as client:
        body = {"n": "Signup", "u": "https://a.example/", "d": "a.example", "w": 390, "p": over}
        r = client.post("/api/event", content=orjson.dumps(body), headers={"content-type": "text/plain"})
        assert (r.status_code, r.text) == (202, "ok")
        assert client.get("/p.gif?site=a.example&url=https%3A%2F%2Fa.example%2Fx&p.plan=pro").status_code == 200
        bad = client.post("/api/event", content=b'{"n":"pageview"}')
        assert bad.status_code == 400 and "domain" in bad.json()["errors"]["request"]
        script = client.get("/p.js", headers={"accept-encoding": "gzip"})
        assert script.status_code == 200 and script.headers["content-type"].startswith("application/javascript")
        assert "sendBeacon" in script.text and len(script.content) > 500
        wait_until(lambda: len(kafka.broker.values(settings.raw_topic)) == 2, 5, message="2 raw events")
        wait_until(lambda: len(kafka.broker.values(settings.bad_topic)) == 2, 5, message="2 bad rows")
    pixel, signup = sorted((orjson.loads(v) for v in kafka.broker.values(settings.raw_topic)), key=lambda e: e["src"])
    assert pixel["src"] == "get" and pixel["props"] == '{"plan":"pro"}' and "w" not in pixel
    assert signup["src"] == "plausible" and signup["event"] == "Signup" and signup["w"] == 390
    assert orjson.loads(signup["props"]) == {f"k{i}": "v" for i in range(MAX_PROPS)} and signup["trunc"] == ["props"]
    rows = {row["reason"]: row for row in map(orjson.loads, kafka.broker.values(settings.bad_topic))}
    assert set(rows) == {"props_dropped", "missing_site"}
    assert signup["event_id"] in rows["props_dropped"]["detail"]
    assert orjson.loads(rows["props_dropped"]["payload"]) == {f"k{MAX_PROPS}": "v"}
