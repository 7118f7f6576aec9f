"""Erasing a site end to end: `pixel sites delete SITE --purge` against a closed day the real
nightly job (Spark) made, its raw and bad raw files, and the serving process's two stores."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import orjson
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import batch_layer.purge as purge
from batch_layer.job import run_day
from core.lake import layout
from core.lake.storage import FileStorage
from events.badrows import BadReason, make_bad_row
from events.sites import site_of, site_of_line
from pixel.cli import app
from serving.realtime.duckdb_store import DuckDBStore
from serving.registry import Registry
from serving.store.embedded import EmbeddedStore
from serving.store.sync import LakeSync
from tests.batch_layer.rawdata import event, ms
from tests.batch_layer.test_job import D, build_dataset
from tests.harness import make_settings, settings_env
from tests.serving.conftest import agg_row

A, B = "a.example", "b.example"


def lake_lines(settings, dataset: str) -> list[bytes]:
    lines = []
    for path in sorted((settings.data_dir / dataset).rglob("*.gz")):
        lines += [line for line in gzip.decompress(path.read_bytes()).split(b"\n") if line]
    return lines


def parquet_sites(settings, dataset: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in sorted((settings.data_dir / dataset).rglob("*.parquet")):
        for site in pq.read_table(path, columns=["site"]).column("site").to_pylist():
            counts[site] = counts.get(site, 0) + 1
    return counts


def sites_of(lines: list[bytes]) -> set[str]:
    return {site_of_line(line) for line in lines}


@pytest.fixture
def closed(spark, tmp_path):
    """Day D closed by the nightly job, a bad raw file, both stores loaded, A and B registered."""
    settings = make_settings(tmp_path / "data", batch_lateness_hours=2)
    build_dataset(settings.data_dir)
    storage = FileStorage(settings.data_dir)
    bad = [
        make_bad_row(BadReason.BAD_TIMESTAMP, orjson.dumps({**event("x1", 5, A), "ts": 5}), source="lander"),
        make_bad_row(BadReason.QUERY_TOO_LARGE, f"site={A}&url=https://{A}/" + "x" * 50, source="collector"),
        make_bad_row(BadReason.BAD_TIMESTAMP, orjson.dumps({**event("y1", 5, B), "ts": 5}), source="lander"),
    ]
    storage.write_atomic(
        f"{layout.hour_dir(layout.BAD_RAW, D, 10)}/0-1-3.jsonl.gz",
        gzip.compress(b"\n".join(orjson.dumps(row) for row in bad) + b"\n"),
    )
    run_day(spark, settings, D)
    closed_store = EmbeddedStore(settings.store_db)
    live = DuckDBStore(settings.realtime_db)
    after = ms(D, 12) + 3 * 86_400_000  # traffic of A created again, after the purge
    live.ingest([agg_row(ms(D, 12), 3, ["v1"], site=A), agg_row(ms(D, 12), 2, ["v5"], site=B)])
    sync = LakeSync(storage, closed_store, live=live)
    sync.sync_once()
    registry = Registry(settings.registry_database_url)
    registry.create_site(A, public=True)
    registry.create_site(B, public=True)
    registry.create_token(A)
    registry.create_goal(A, event="Signup")
    yield settings, storage, sync, closed_store, live, registry, after
    closed_store.close()


def invoke(settings, *args):
    return CliRunner().invoke(app, list(args), env=settings_env(settings), catch_exceptions=False)


def test_purge_erases_the_site_from_every_dataset_and_both_stores(closed, monkeypatch):
    settings, storage, sync, closed_store, live, registry, after = closed
    before = {
        "raw": lake_lines(settings, "raw"),
        "badraw": lake_lines(settings, "badraw"),
        "bad": lake_lines(settings, "bad"),
        "clean": parquet_sites(settings, "clean/events"),
        "daily": parquet_sites(settings, "views/daily"),
        "sessions": parquet_sites(settings, "views/sessions"),
    }
    assert A in sites_of(before["raw"]) and A in sites_of(before["badraw"]) and before["clean"][A] > 0
    assert {A, B} <= set(closed_store.site_events())
    b_events = closed_store.site_events()[B]
    monkeypatch.setattr(purge.time, "time", lambda: after / 1000 - 86_400)  # the purge: 2 days after D

    result = invoke(settings, "sites", "delete", A, "--purge", "--yes")
    assert result.exit_code == 0, result.output
    assert "erased" in result.output and f"deleted site {A}" in result.output

    # The registry: A, its token and goal gone; B kept.
    assert registry.site(A) is None and registry.goals(A) == [] and registry.site(B) is not None
    # Raw, bad raw and bad rows: exactly A's lines gone, every other line kept as it was.
    for dataset in ("raw", "badraw", "bad"):
        now = lake_lines(settings, dataset)
        assert A not in sites_of(now), dataset
        assert sorted(now) == sorted(line for line in before[dataset] if site_of_line(line) != A), dataset
    assert len(before["badraw"]) - len(lake_lines(settings, "badraw")) == 2  # a raw event and a query string
    # Clean events and the views: A's rows gone, the others' counts as before.
    for dataset, path in (("clean", "clean/events"), ("daily", "views/daily"), ("sessions", "views/sessions")):
        assert parquet_sites(settings, path) == {s: n for s, n in before[dataset].items() if s != A}, dataset
    summary = json.loads(storage.read(layout.run_summary(D)))
    assert summary["purged"] == [A] and summary["purging"] == []

    # The serving process: the request applied once, A gone from both stores, B untouched.
    assert storage.list_files(layout.PURGES) == [layout.purge_request(A)]
    live.ingest([agg_row(after, 4, ["v9"], site=A)])  # A created again, new traffic after the purge
    assert D in sync.sync_once()  # the day's run changed: loaded again, from the erased lake
    assert storage.list_files(layout.PURGES) == []
    assert A not in closed_store.site_events() and closed_store.site_events()[B] == b_events
    assert live.totals(A, 0, after).pageviews == 0
    assert live.totals(A, 0, after + 60_000).pageviews == 4
    assert live.totals(B, 0, after).pageviews == 2

    # Run again: nothing left to erase, nothing rewritten.
    again = purge.purge_lake(storage, A)
    assert again.total == 0 and again.files_rewritten == 0 and again.days_restated == []


def test_a_purge_killed_mid_way_is_finished_by_the_next_run(closed, monkeypatch):
    settings, storage, sync, closed_store, *_ = closed
    rewrite = purge._rewrite_parquet
    calls = []

    def dies_on_the_second_file(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return rewrite(*args)

    monkeypatch.setattr(purge, "_rewrite_parquet", dies_on_the_second_file)
    with pytest.raises(KeyboardInterrupt):
        purge.purge_lake(storage, A)
    assert json.loads(storage.read(layout.run_summary(D)))["purging"] == [A]
    assert D in sync.sync_once()  # a store loading the day meanwhile ...
    monkeypatch.setattr(purge, "_rewrite_parquet", rewrite)

    done = purge.purge_lake(storage, A)
    assert done.days_restated == [str(D)] and done.total > 0
    summary = json.loads(storage.read(layout.run_summary(D)))
    assert summary["purged"] == [A] and summary["purging"] == []
    assert A not in parquet_sites(settings, "clean/events") and A not in parquet_sites(settings, "views/daily")
    assert D in sync.sync_once()  # ... loads it again at the end: A is gone from it
    assert A not in closed_store.site_events()


def test_deleting_without_purge_keeps_the_data_and_unknown_sites_are_refused(closed):
    settings, storage, sync, closed_store, live, registry, _after = closed
    result = invoke(settings, "sites", "delete", A, "--yes")
    assert result.exit_code == 0 and registry.site(A) is None and "erased" not in result.output
    assert storage.list_files(layout.PURGES) == [] and A in parquet_sites(settings, "clean/events")
    refused = invoke(settings, "sites", "delete", "nope.example", "--yes")
    assert refused.exit_code == 1 and "no site nope.example" in refused.output


@pytest.mark.fast
@pytest.mark.parametrize(
    ("record", "site"),
    [
        ({"site": "a.example", "event": "pageview"}, "a.example"),  # raw or clean event
        ({"domain": "b.example", "name": "pageview"}, "b.example"),  # Plausible Events API body
        ({"d": "c.example", "n": "pageview"}, "c.example"),  # ... in the trackers' short form
        ({"reason": "bad_timestamp", "payload": '{"site":"a.example","ts":5}'}, "a.example"),
        ({"reason": "query_too_large", "payload": "site=a.example&url=x"}, "a.example"),
        ({"reason": "x", "payload": json.dumps({"reason": "y", "payload": "?site=d.example"})}, "d.example"),
        ({"reason": "invalid_json", "payload": "\x00\x01not json"}, ""),
        ({"reason": "invalid_json", "payload": "&".join(["k=v"] * 2000)}, ""),  # not a query string
        ({"payload": '{"site": "a.example"}'}, ""),  # not a bad row: its payload is data, not a record
        (["a.example"], ""),
    ],
)
def test_site_of_names_the_site_of_each_kind_of_lake_record(record, site):
    assert site_of(record) == site


@pytest.mark.fast
def test_purge_reads_a_cut_file_and_leaves_it_named(tmp_path):
    storage = FileStorage(tmp_path)
    whole = gzip.compress(orjson.dumps(event("e1", ms(D, 1), A)) + b"\n")
    storage.write_atomic(f"{layout.hour_dir(layout.RAW, D, 1)}/0-0-0.jsonl.gz", whole[:-8])
    storage.write_atomic(f"{layout.hour_dir(layout.RAW, D, 2)}/0-1-1.jsonl.gz", whole)
    out = purge.purge_lake(storage, "WWW.A.example")  # names as the registry keeps them
    assert out.rows["raw"] == 1 and out.files_unreadable == [f"{layout.hour_dir(layout.RAW, D, 1)}/0-0-0.jsonl.gz"]
    assert storage.list_files(layout.day_dir(layout.RAW, D)) == [f"{layout.hour_dir(layout.RAW, D, 1)}/0-0-0.jsonl.gz"]
    assert dt.date.fromisoformat(purge.days_of_lake(storage)[0]) == D
