"""The Stats API v1 (Plausible's shape) over the analytics engine, through FastAPI's real request
handling: closed days exact under any v1 filters (;, !=, |, *), open days from the speed rows,
comparisons, hours, breakdowns of any property; and the parameter parsing it relies on.
The numbers of D1 and D2 are worked out in tests/serving/conftest.py's day1() and day2()."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from serving.query import QueryError, parse_metrics, parse_period
from serving.registry import Registry
from serving.stats_api import (
    Unauthorized,
    parse_v1_filters,
    query_error_response,
    stats_router,
    unauthorized_response,
    v1_filters_as_v2,
    wildcard_regex,
)
from tests.serving.conftest import D1, D2, D3

pytestmark = pytest.mark.fast
CLOSED = {"period": "custom", "date": f"{D1},{D2}"}
ALL = "visitors,pageviews,visits,bounce_rate,visit_duration,views_per_visit,events"


@pytest.fixture
def registry(tmp_path):
    registry = Registry(f"sqlite:///{tmp_path / 'registry.db'}")
    registry.create_site("a.example", public=True)
    registry.create_site("b.example")
    return registry


@pytest.fixture
def client(world, registry):
    *_, analytics = world
    app = FastAPI()
    app.include_router(stats_router(analytics, today=lambda: D3, can_read=registry.can_read))
    app.add_exception_handler(QueryError, query_error_response)
    app.add_exception_handler(Unauthorized, unauthorized_response)
    return TestClient(app)


def get(client, path, site="a.example", headers=None, **params):
    return client.get(f"/api/v1/stats/{path}", params={"site_id": site, **params}, headers=headers)


def results(client, path, **params):
    r = get(client, path, **params)
    assert r.status_code == 200, r.text
    return r.json()["results"]


@pytest.mark.parametrize(
    "period,date,first,last",
    [
        ("day", None, "2026-11-22", "2026-11-22"),
        ("day", "2026-11-20", "2026-11-20", "2026-11-20"),
        ("7d", None, "2026-11-16", "2026-11-22"),
        ("30d", "2026-11-30", "2026-11-01", "2026-11-30"),
        ("month", None, "2026-11-01", "2026-11-30"),
        ("6mo", None, "2026-06-01", "2026-11-30"),
        ("12mo", "2026-02-10", "2025-03-01", "2026-02-28"),
        ("custom", "2026-11-20,2026-11-21", "2026-11-20", "2026-11-21"),
    ],
)
def test_periods(period, date, first, last):
    days = parse_period(period, date, D3)
    assert (str(days.first), str(days.last)) == (first, last)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: parse_period("week", None, D3), "unknown period 'week'"),
        (lambda: parse_period("custom", "2026-11-20", D3), "date=YYYY-MM-DD,YYYY-MM-DD"),
        (lambda: parse_period("custom", "2026-11-21,2026-11-20", D3), "before it starts"),
        (lambda: parse_period("day", "yesterday", D3), "is not a date"),
        (lambda: parse_metrics("visitors,clicks"), "unknown metric 'clicks'"),
        (lambda: parse_v1_filters("event:page=/a"), "not property==value"),
        (lambda: parse_v1_filters("visit:shoe==42"), "unknown property 'visit:shoe'"),
        (lambda: parse_v1_filters(";".join(["event:page==/"] * 31)), "at most 30 filters"),
    ],
)
def test_bad_parameters_name_what_is_allowed(call, message):
    with pytest.raises(QueryError, match=message):
        call()


def test_v1_filters_become_a_filter_tree():
    tree = parse_v1_filters("visit:browser==Chrome|Safari;event:page!=/blog/*")
    assert [(c.op, c.prop, c.values) for c in tree.children] == [
        ("is", "visit:browser", ("Chrome", "Safari")),
        ("matches_not", "event:page", ("^/blog/.*$",)),
    ]
    assert wildcard_regex("/a.b(c)*") == r"^/a\.b\(c\).*$"


def test_v1_filter_values_escape_their_own_separators():
    assert v1_filters_as_v2(r"event:page==/a\;b|/c\|d;visit:browser!=Chrome") == [
        ["is", "event:page", ["/a;b", "/c|d"]],
        ["is_not", "visit:browser", ["Chrome"]],
    ]
    assert v1_filters_as_v2("event:page==/x!=y") == [["is", "event:page", ["/x!=y"]]]  # the first operator
    assert v1_filters_as_v2(r"event:page==/back\\slash") == [["is", "event:page", ["/back\\slash"]]]
    with pytest.raises(QueryError, match="not property==value"):
        v1_filters_as_v2("event:page==")


def test_aggregate_over_closed_days_is_exact(client):
    assert results(client, "aggregate", metrics=ALL, **CLOSED) == {
        "visitors": {"value": 9},
        "pageviews": {"value": 17},
        "visits": {"value": 10},
        "bounce_rate": {"value": 20},
        "visit_duration": {"value": 69},
        "views_per_visit": {"value": 1.7},
        "events": {"value": 18},
    }


@pytest.mark.parametrize(
    "filters,pageviews,visitors,visits",
    [
        ("visit:browser==Chrome", 15, 7, 8),
        ("visit:browser==Chrome;event:page!=/", 13, 7, 8),
        ("event:page==/blog/*", 2, 1, 2),
        ("visit:source==Google|Twitter", 14, 8, 8),
        ("visit:entry_page==/pricing;event:name==Signup", 0, 1, 1),
    ],
)
def test_aggregate_under_combined_filters_is_exact(client, filters, pageviews, visitors, visits):
    got = results(client, "aggregate", metrics="pageviews,visitors,visits", filters=filters, **CLOSED)
    assert (got["pageviews"]["value"], got["visitors"]["value"], got["visits"]["value"]) == (
        pageviews,
        visitors,
        visits,
    )


def test_aggregate_reaching_today_adds_the_speed_rows_and_has_no_open_sessions(client):
    body = get(client, "aggregate", period="7d", metrics="pageviews,visitors,visits").json()
    assert body["results"]["pageviews"] == {"value": 17 + 50}  # the stale D2 speed row never counts
    assert body["results"]["visitors"]["value"] == pytest.approx(9 + 25, abs=1)
    assert body["results"]["visits"] == {"value": None} and "closed days only" in body["warning"]
    one_page = results(client, "aggregate", period="7d", metrics="pageviews", filters="event:page==/")
    assert one_page == {"pageviews": {"value": 2 + 30}}


def test_compare_with_the_previous_period(client):
    got = results(
        client, "aggregate", period="day", date=str(D2), metrics="pageviews,bounce_rate", compare="previous_period"
    )
    assert got == {"pageviews": {"value": 10, "change": 43}, "bounce_rate": {"value": 0, "change": -40}}


def test_timeseries_by_day_month_and_hour(client):
    days = results(client, "timeseries", period="custom", date=f"{D1},{D3}", metrics="pageviews,visits")
    assert days == [
        {"date": "2026-11-20", "pageviews": 7, "visits": 5},
        {"date": "2026-11-21", "pageviews": 10, "visits": 5},
        {"date": "2026-11-22", "pageviews": 50, "visits": None},
    ]
    months = results(client, "timeseries", period="6mo", interval="month", metrics="pageviews")
    assert [m["date"] for m in months][0] == "2026-06-01" and months[-1] == {"date": "2026-11-01", "pageviews": 67}
    hours = results(
        client,
        "timeseries",
        period="day",
        date=str(D1),
        interval="hour",
        metrics="pageviews",
        filters="visit:browser==Chrome",
    )  # closed days' hours come from the store, filtered
    assert len(hours) == 24 and [(h["date"][11:13], h["pageviews"]) for h in hours if h["pageviews"]] == [
        ("00", 2),
        ("02", 2),
        ("05", 1),
    ]
    today = results(client, "timeseries", period="day", interval="hour", metrics="pageviews")
    assert today[1] == {"date": "2026-11-22 01:00:00", "pageviews": 40}
    assert get(client, "timeseries", period="6mo", interval="hour").status_code == 400


def test_breakdown_of_any_property_under_any_filters(client):
    got = results(
        client, "breakdown", property="visit:entry_page", metrics="visitors,visits", period="day", date=str(D1)
    )
    assert got == [
        {"entry_page": "/", "visitors": 2, "visits": 2},
        {"entry_page": "/pricing", "visitors": 2, "visits": 2},
        {"entry_page": "/blog/b", "visitors": 1, "visits": 1},
    ]
    filtered = results(
        client, "breakdown", property="event:page", metrics="pageviews", filters="visit:browser!=Chrome", **CLOSED
    )
    assert filtered == [{"page": "/pricing", "pageviews": 2}]
    page2 = results(
        client,
        "breakdown",
        property="visit:entry_page",
        metrics="visitors",
        period="day",
        date=str(D1),
        limit=1,
        page=2,
    )
    assert page2 == [{"entry_page": "/pricing", "visitors": 2}]
    plans = results(client, "breakdown", property="event:props:plan", metrics="events", period="day", date=str(D1))
    assert plans == [{"plan": "", "events": 7}, {"plan": "pro", "events": 1}]  # "": the hits without it
    signups = results(
        client, "aggregate", metrics="events", filters="event:props:plan==pro", period="day", date=str(D1)
    )
    assert signups == {"events": {"value": 1}}
    live = results(client, "breakdown", property="event:page", metrics="pageviews", period="7d")
    assert {r["page"]: r["pageviews"] for r in live} == {
        "/docs": 21,
        "/": 32,
        "/new": 10,
        "/blog/a": 1,
        "/blog/b": 1,
        "/pricing": 2,
    }


@pytest.mark.parametrize(
    "path,params,message",
    [
        ("aggregate", {"metrics": "visitors,clicks"}, "unknown metric 'clicks'"),
        ("aggregate", {"period": "forever"}, "unknown period"),
        ("aggregate", {"compare": "last_year"}, "compare takes previous_period"),
        ("breakdown", {"property": "visit:shoe_size"}, "unknown property"),
        ("breakdown", {"property": "visit:os", "limit": "0"}, "out of range"),
        ("breakdown", {"property": "visit:os", "filters": "event:page==/[("}, None),
        ("timeseries", {"interval": "week"}, "unknown interval"),
    ],
)
def test_client_errors_are_400_with_a_message(client, path, params, message):
    r = get(client, path, **params)
    if message is None:  # a literal with regex characters is no pattern: an answer, not an error
        assert r.status_code == 200
        return
    assert r.status_code == 400 and message in r.json()["error"]


def test_site_id_is_required_and_realtime_is_a_number(client):
    assert client.get("/api/v1/stats/aggregate").status_code == 422  # FastAPI's own validation answer
    assert get(client, "realtime/visitors").json() == 0


def test_openapi_documents_the_stats_api(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/api/v1/stats/aggregate",
        "/api/v1/stats/timeseries",
        "/api/v1/stats/breakdown",
        "/api/v1/stats/realtime/visitors",
    } <= set(paths)


def test_a_private_site_needs_its_own_token(client, registry):
    r = get(client, "aggregate", site="b.example", metrics="pageviews", **CLOSED)
    assert r.status_code == 401 and "pixel tokens create b.example" in r.json()["error"]
    assert r.headers["www-authenticate"] == "Bearer"
    token = registry.create_token("b.example")
    ok = get(
        client,
        "aggregate",
        site="b.example",
        headers={"Authorization": f"Bearer {token}"},
        metrics="pageviews",
        **CLOSED,
    )
    assert ok.status_code == 200 and ok.json()["results"] == {"pageviews": {"value": 3}}
    registry.create_site("c.example")
    other = get(client, "realtime/visitors", site="c.example", headers={"Authorization": f"Bearer {token}"})
    assert other.status_code == 401 and "does not open" in other.json()["error"]
    assert get(client, "breakdown", site="unknown.example", property="visit:os").status_code == 401


def test_open_days_answer_any_filters_from_the_finest_speed_rows(client):
    """Today's speed rows are per combination of property values: filters and breakdowns combine."""
    got = results(
        client,
        "aggregate",
        period="day",
        metrics="pageviews,visitors,events",
        filters="visit:source==Google;event:page==/",
    )
    assert got["pageviews"] == {"value": 30} and got["events"] == {"value": 30}
    assert got["visitors"]["value"] == pytest.approx(15, abs=1)
    custom = results(client, "aggregate", period="day", metrics="pageviews,events", filters="event:name==Signup")
    assert custom == {"pageviews": {"value": 0}, "events": {"value": 2}}  # bots (7 events) never count
    pages = results(
        client, "breakdown", property="event:page", metrics="pageviews", period="day", filters="event:page!=/docs"
    )
    assert pages == [{"page": "/", "pageviews": 30}, {"page": "/new", "pageviews": 10}]
    entry = get(client, "aggregate", period="day", metrics="pageviews", filters="visit:entry_page==/")
    assert entry.json()["results"]["pageviews"] == {"value": None} and "entry and exit pages" in entry.json()["warning"]


def test_v1_answers_say_which_days_are_final_and_which_provisional(client):
    closed = get(client, "aggregate", metrics="pageviews", **CLOSED).json()["meta"]
    assert closed == {"final_through": str(D2), "final": [str(D1), str(D2)]}
    both = get(client, "timeseries", period="7d", metrics="pageviews").json()["meta"]
    assert both == {"final_through": str(D2), "final": ["2026-11-16", str(D2)], "provisional": [str(D3), str(D3)]}
    live = get(client, "breakdown", period="day", property="event:page", metrics="pageviews").json()["meta"]
    assert live == {"final_through": str(D2), "provisional": [str(D3), str(D3)]}
