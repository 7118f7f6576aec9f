"""The Stats API (Plausible v1 shape) over the merge, through FastAPI's real request handling;
and the parameter parsing it relies on."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from serving.query import QueryError, parse_filters, parse_metrics, parse_period
from serving.registry import Registry
from serving.stats_api import Unauthorized, query_error_response, stats_router, unauthorized_response
from tests.serving.conftest import D1, D2, D3

pytestmark = pytest.mark.fast


@pytest.fixture
def registry(tmp_path):
    registry = Registry(f"sqlite:///{tmp_path / 'registry.db'}")
    registry.create_site("a.example", public=True)
    registry.create_site("b.example")
    return registry


@pytest.fixture
def client(stats, registry):
    app = FastAPI()
    app.include_router(stats_router(stats, today=lambda: D3, can_read=registry.can_read))
    app.add_exception_handler(QueryError, query_error_response)
    app.add_exception_handler(Unauthorized, unauthorized_response)
    return TestClient(app)


def get(client, path, site="a.example", headers=None, **params):
    return client.get(f"/api/v1/stats/{path}", params={"site_id": site, **params}, headers=headers)


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
        (lambda: parse_metrics("visitors,events"), "unknown metric 'events'"),
        (lambda: parse_filters("event:page==/a;visit:os==Linux"), "only one filter"),
        (lambda: parse_filters("event:page=/a"), "not property==value"),
        (lambda: parse_filters("visit:city==Paris"), "unknown property 'visit:city'"),
    ],
)
def test_bad_parameters_name_what_is_allowed(call, message):
    with pytest.raises(QueryError, match=message):
        call()


def test_aggregate_over_closed_days_is_exact(client):
    r = get(
        client,
        "aggregate",
        period="custom",
        date=f"{D1},{D2}",
        metrics="visitors,pageviews,visits,bounce_rate,visit_duration",
    )
    assert r.status_code == 200
    assert r.json() == {
        "results": {
            "visitors": {"value": 300},
            "pageviews": {"value": 800},
            "visits": {"value": 350},
            "bounce_rate": {"value": 43},
            "visit_duration": {"value": 51},
        }
    }


def test_aggregate_reaching_today_merges_and_has_no_sessions(client):
    body = get(client, "aggregate", period="7d", metrics="pageviews,visits").json()
    assert body["results"] == {"pageviews": {"value": 850}, "visits": {"value": None}}
    assert "batch sessions" in body["warning"]


def test_aggregate_with_a_filter_reads_that_value(client):
    body = get(
        client,
        "aggregate",
        period="custom",
        date=f"{D1},{D2}",
        metrics="pageviews,visitors",
        filters="event:page==/docs",
    ).json()
    assert body["results"] == {"pageviews": {"value": 600}, "visitors": {"value": 230}}


def test_timeseries_by_day_and_month(client):
    days = get(client, "timeseries", period="custom", date=f"{D1},{D3}", metrics="pageviews").json()["results"]
    assert days == [
        {"date": "2026-11-20", "pageviews": 300},
        {"date": "2026-11-21", "pageviews": 500},
        {"date": "2026-11-22", "pageviews": 50},
    ]
    months = get(client, "timeseries", period="6mo", interval="month", metrics="pageviews").json()["results"]
    assert [m["date"] for m in months] == [
        "2026-06-01",
        "2026-07-01",
        "2026-08-01",
        "2026-09-01",
        "2026-10-01",
        "2026-11-01",
    ]
    assert months[-1]["pageviews"] == 850 and sum(m["pageviews"] for m in months) == 850


def test_timeseries_by_hour_comes_from_the_store(client):
    hours = get(client, "timeseries", period="day", interval="hour", metrics="pageviews").json()["results"]
    assert len(hours) == 24 and hours[1] == {"date": "2026-11-22 01:00:00", "pageviews": 40}
    assert get(client, "timeseries", interval="hour", filters="event:page==/").status_code == 400


def test_breakdown_is_plausible_shaped(client):
    r = get(
        client,
        "breakdown",
        property="event:page",
        period="custom",
        date=f"{D1},{D2}",
        metrics="visitors,pageviews",
        limit=5,
    )
    assert r.json() == {
        "results": [
            {"page": "/docs", "visitors": 230, "pageviews": 600},
            {"page": "/", "visitors": 80, "pageviews": 200},
        ]
    }
    one = get(
        client, "breakdown", property="event:page", period="7d", metrics="pageviews", filters="event:page==/new"
    ).json()
    assert one == {"results": [{"page": "/new", "pageviews": 10}]}


@pytest.mark.parametrize(
    "path,params,message",
    [
        ("aggregate", {"metrics": "visitors,clicks"}, "unknown metric 'clicks'"),
        ("aggregate", {"period": "forever"}, "unknown period"),
        ("breakdown", {"property": "visit:country"}, "unknown property"),
        ("breakdown", {"property": "visit:os", "filters": "event:page==/"}, "its own property"),
        ("breakdown", {"property": "visit:os", "metrics": "visits"}, "session metrics"),
        ("breakdown", {"property": "visit:os", "limit": "0"}, "out of range"),
        ("timeseries", {"interval": "week"}, "unknown interval"),
    ],
)
def test_client_errors_are_400_with_a_message(client, path, params, message):
    r = get(client, path, **params)
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
    r = get(client, "aggregate", site="b.example", period="custom", date=f"{D1},{D2}", metrics="pageviews")
    assert r.status_code == 401 and "pixel tokens create b.example" in r.json()["error"]
    assert r.headers["www-authenticate"] == "Bearer"
    token = registry.create_token("b.example")
    ok = get(
        client,
        "aggregate",
        site="b.example",
        headers={"Authorization": f"Bearer {token}"},
        period="custom",
        date=f"{D1},{D2}",
        metrics="pageviews",
    )
    assert ok.status_code == 200 and ok.json() == {"results": {"pageviews": {"value": 9}}}
    registry.create_site("c.example")
    other = get(client, "realtime/visitors", site="c.example", headers={"Authorization": f"Bearer {token}"})
    assert other.status_code == 401 and "does not open" in other.json()["error"]
    assert get(client, "breakdown", site="unknown.example", property="visit:os").status_code == 401
