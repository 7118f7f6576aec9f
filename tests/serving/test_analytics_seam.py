"""The v2 engine across the seam: closed days from the analytics store, open days from the speed
rows in the real-time store; a speed row of a closed day is never counted; a day that closes
while queries run moves from provisional to final. And the route, through FastAPI."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from core.lake.storage import FileStorage
from events.days import day_bounds
from serving.analytics.closed import EmbeddedClosed
from serving.analytics.engine import Analytics
from serving.analytics.query import parse_v2
from serving.analytics.router import v2_router
from serving.query import QueryError
from serving.realtime.duckdb_store import DuckDBStore
from serving.registry import Registry
from serving.stats_api import Unauthorized, check_access, query_error_response, unauthorized_response
from serving.store.embedded import EmbeddedStore
from serving.store.sync import LakeSync
from tests.serving.conftest import D1, D2, D3, NOW, agg_row, clean_event, close_day

pytestmark = pytest.mark.fast


def close_with(storage: FileStorage, day: dt.date, hits: int) -> None:
    """The nightly job closes ``day`` with ``hits`` pageviews of /docs, one visitor each."""
    start = day_bounds(day)[0]
    close_day(
        storage,
        day,
        [clean_event("a.example", start + i * 1000, f"{day}-v{i}", "/docs", "Google") for i in range(hits)],
    )


def speed_rows(day: dt.date, pageviews: int, visitors: int, page: str = "/docs") -> list[dict]:
    ts = day_bounds(day)[0] + 3_600_000
    return [agg_row(ts, pageviews, [f"live-{day}-{i}" for i in range(visitors)], page=page)]


@pytest.fixture
def seam(tmp_path):
    storage = FileStorage(tmp_path / "lake")
    close_with(storage, D1, 30)
    live = DuckDBStore()
    live.ingest(speed_rows(D1, 999, 999))  # a stale speed view of a closed day: never used
    live.ingest(speed_rows(D2, 40, 20))
    live.ingest(speed_rows(D3, 10, 5))
    store = EmbeddedStore()
    sync = LakeSync(storage, store)
    sync.sync_once()
    return storage, sync, Analytics(EmbeddedClosed(store), lambda: sync.watermark, live, clock=lambda: NOW)


def ask(analytics, **body):
    return analytics.answer(parse_v2({"site_id": "a.example", **body}, D3))


def test_closed_days_are_final_and_open_days_provisional(seam):
    _, _, analytics = seam
    answer = ask(analytics, metrics=["visitors", "pageviews"], date_range=[str(D1), str(D3)])
    assert answer["results"][0]["metrics"] == [30 + 20 + 5, 30 + 40 + 10]
    assert answer["meta"]["final"] == [str(D1), str(D1)] and answer["meta"]["provisional"] == [str(D2), str(D3)]
    assert answer["meta"]["final_through"] == str(D1)
    assert answer["meta"]["provisional_visitors_error"] == "±3.2% (95%) of the provisional part"
    by_day = ask(analytics, metrics=["pageviews"], date_range=[str(D1), str(D3)], dimensions=["time:day"])
    assert [(r["dimensions"][0], r["metrics"][0]) for r in by_day["results"]] == [
        (str(D1), 30),
        (str(D2), 40),
        (str(D3), 10),
    ]
    page = ask(
        analytics,
        metrics=["pageviews"],
        date_range=[str(D1), str(D3)],
        dimensions=["event:page"],
        filters=[["is", "event:page", ["/docs"]]],
    )
    assert page["results"] == [{"dimensions": ["/docs"], "metrics": [80]}]


def test_a_day_closing_moves_from_provisional_to_final(seam):
    storage, sync, analytics = seam
    before = ask(analytics, metrics=["pageviews"], date_range=[str(D2), str(D2)])
    assert before["results"][0]["metrics"] == [40] and "final" not in before["meta"]
    close_with(storage, D2, 37)  # the nightly job closes D2 (the speed layer had seen 40)
    assert ask(analytics, metrics=["pageviews"], date_range=[str(D2), str(D2)])["results"][0]["metrics"] == [40]
    assert sync.sync_once() == [D2]  # the serving process loads it
    after = ask(analytics, metrics=["pageviews"], date_range=[str(D2), str(D2)])
    assert after["results"][0]["metrics"] == [37] and after["meta"]["final"] == [str(D2), str(D2)]


def test_a_sync_reads_only_the_run_summaries_that_changed(seam, monkeypatch):
    storage, sync, _ = seam
    reads = []
    real_read = storage.read
    monkeypatch.setattr(storage, "read", lambda path: reads.append(path) or real_read(path))
    assert sync.sync_once() == [] and not [p for p in reads if "/_runs/" in p]  # nothing new: nothing read
    start = day_bounds(D1)[0]
    close_day(storage, D1, [clean_event("a.example", start, "v", "/docs", "Google")], run="rerun")  # D1 run again
    assert sync.sync_once() == [D1] and [p for p in reads if "/_runs/" in p] == [f"views/_runs/date={D1}.json"]


def test_queries_the_speed_rows_cant_answer_leave_the_open_days_out_and_say_so(seam):
    _, _, analytics = seam
    answer = ask(analytics, metrics=["visits"], date_range=[str(D1), str(D3)])
    assert answer["results"][0]["metrics"] == [30]
    assert "closed days only" in answer["meta"]["warnings"][0]


@pytest.fixture
def client(seam, tmp_path):
    _, _, analytics = seam
    registry = Registry(f"sqlite:///{tmp_path / 'registry.db'}")
    registry.create_site("a.example")
    token = registry.create_token("a.example")
    app = FastAPI()
    app.include_router(
        v2_router(analytics, today=lambda: D3, site_access=lambda s, a: check_access(registry.can_read, s, a))
    )
    app.add_exception_handler(QueryError, query_error_response)
    app.add_exception_handler(Unauthorized, unauthorized_response)
    return TestClient(app), token


def test_the_route_answers_refuses_and_asks_for_a_token(client):
    http, token = client
    body = {"site_id": "a.example", "metrics": ["pageviews"], "date_range": [str(D1), str(D1)]}
    assert http.post("/api/v2/query", json=body).status_code == 401
    ok = http.post("/api/v2/query", json=body, headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200 and ok.json()["results"] == [{"dimensions": [], "metrics": [30]}]
    assert ok.json()["query"]["date_range"] == [str(D1), str(D1)]
    bad = http.post("/api/v2/query", json={**body, "metrics": ["nope"]}, headers={"Authorization": f"Bearer {token}"})
    assert bad.status_code == 400 and "unknown metric 'nope'" in bad.json()["error"]
    for junk in (b"[1,2]", b"{not json", b""):
        refused = http.post("/api/v2/query", content=junk, headers={"Content-Type": "application/json"})
        assert refused.status_code == 400 and refused.json()["error"], junk


def test_open_days_break_down_by_several_properties_under_filters(world):
    *_, analytics = world  # conftest's: D3 open, its speed rows per page and source
    answer = analytics.answer(
        parse_v2(
            {
                "site_id": "a.example",
                "metrics": ["pageviews", "visitors"],
                "date_range": [str(D3), str(D3)],
                "dimensions": ["event:page", "visit:source", "time:hour"],
                "filters": [["not", ["is", "event:page", ["/new"]]]],
            },
            D3,
        )
    )
    got = {tuple(r["dimensions"]): r["metrics"][0] for r in answer["results"]}
    assert got == {("/", "Google", "2026-11-22 01:00:00"): 30, ("/docs", "", "2026-11-22 01:00:00"): 10}
    assert answer["meta"]["provisional"] == [str(D3), str(D3)] and "warnings" not in answer["meta"]
