"""The restatement log: loading a closed day records, per site, what the API answered for it before
(the speed layer's live numbers, or an earlier run's final ones) and after; the API and the
dashboard read it."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from core.lake import layout
from core.lake.storage import FileStorage
from events.days import day_bounds
from serving.analytics.closed import EmbeddedClosed
from serving.analytics.engine import Analytics
from serving.app import day_numbers
from serving.drift import drift_from_log
from serving.realtime.duckdb_store import DuckDBStore
from serving.stats_api import stats_router
from serving.store import restatements
from serving.store.embedded import EmbeddedStore
from serving.store.sync import LakeSync
from tests.serving.conftest import D1, D2, D3, agg_row, close_day, day1, day2, ids

pytestmark = pytest.mark.fast


@pytest.fixture
def lake(tmp_path):
    storage = FileStorage(tmp_path / "lake")
    live = DuckDBStore()
    t1, t2 = day_bounds(D1)[0], day_bounds(D2)[0]
    live.ingest(
        [
            agg_row(t2 + 3_600_000, 9, ids("w", 5), page="/docs"),  # D2 as the speed layer saw it: 9 of 10
            agg_row(t2 + 3_600_000, 4, ids("x", 4), site="c.example"),  # a site the batch found none of (bots)
        ]
    )
    store = EmbeddedStore()
    sync = LakeSync(storage, store, live=live, numbers=day_numbers(store.day_totals, live))
    close_day(storage, D1, day1())
    assert sync.sync_once() == [D1]  # from history: the API never answered D1 live
    return storage, store, sync, live, t1


def test_closing_a_day_logs_live_against_final_per_site(lake):
    storage, store, sync, _, _ = lake
    assert storage.list_files(layout.RESTATEMENTS) == []  # nothing to restate for D1
    close_day(storage, D2, day2())
    assert sync.sync_once() == [D2]
    a = restatements.read(storage, "a.example", D1, D3)
    assert [(r["date"], r["source"], r["before"], r["after"]) for r in a] == [
        (str(D2), "live", {"pageviews": 9, "visitors": 5}, {"pageviews": 10, "visitors": 5})
    ]
    assert a[0]["difference"] == {"pageviews": 1, "visitors": 0}
    assert a[0]["change_pct"] == {"pageviews": 11.1, "visitors": 0.0}
    (c,) = restatements.read(storage, "c.example", D2, D2)
    assert c["before"] == {"pageviews": 4, "visitors": 4} and c["after"] == {"pageviews": 0, "visitors": 0}
    assert c["change_pct"]["pageviews"] == -100.0
    assert [r["site"] for r in restatements.read_day(storage, D2)] == ["a.example", "c.example"]

    # The nightly job runs D2 again (one event fewer): the earlier final numbers are restated.
    close_day(storage, D2, day2()[1:], run="2")
    assert sync.sync_once() == [D2]
    again = restatements.read(storage, "a.example", D2, D2)
    assert [(r["source"], r["before"]["pageviews"], r["after"]["pageviews"]) for r in again] == [
        ("live", 9, 10),
        ("final", 10, 9),
    ]
    assert store.day_totals(D2)["a.example"] == (9, 5)


def test_the_api_answers_a_sites_restatements(lake):
    storage, store, sync, live, _ = lake
    close_day(storage, D2, day2())
    sync.sync_once()
    app = FastAPI()
    analytics = Analytics(EmbeddedClosed(store), lambda: sync.watermark, live)
    restated = lambda site, first, last: restatements.read(storage, site, first, last)  # noqa: E731
    app.include_router(stats_router(analytics, lambda: D3, lambda site, token: True, restatements=restated))
    client = TestClient(app)
    answer = client.get("/api/v1/stats/restatements", params={"site_id": "a.example", "period": "7d"}).json()
    assert [(r["date"], r["before"]["pageviews"], r["after"]["pageviews"]) for r in answer["results"]] == [
        (str(D2), 9, 10)
    ]
    none = client.get("/api/v1/stats/restatements", params={"site_id": "a.example", "period": "day", "date": str(D1)})
    assert none.json() == {"results": []}
    assert client.get("/api/v1/stats/restatements", params={"site_id": "b.example", "period": "7d"}).json() == {
        "results": []
    }


def test_pixel_drift_reads_the_log(lake):
    storage, *_ = lake
    close_day(storage, D2, day2())
    lake[2].sync_once()
    rows = {r.site: r for r in drift_from_log(restatements.read_day(storage, D2))}
    assert (rows["a.example"].batch.pageviews, rows["a.example"].speed.events) == (10, 9)
    assert rows["a.example"].pageviews_pct == -10.0 and rows["c.example"].pageviews_pct is None  # no final
