"""Reprocessing closed days: the real nightly job (Spark) closes them again, the summary says what
changed per day, and the serving process's next sync reloads them and logs the restatement of
exactly the days whose numbers changed."""

from __future__ import annotations

import pytest

from batch_layer.job import run_day
from batch_layer.reprocess import NotClosed, reprocess
from core.lake.storage import FileStorage
from serving.app import day_numbers
from serving.realtime.duckdb_store import DuckDBStore
from serving.store import restatements
from serving.store.embedded import EmbeddedStore
from serving.store.sync import LakeSync
from tests.batch_layer.rawdata import RawDataset, event, ms
from tests.batch_layer.test_job import D, N, P, build_dataset
from tests.harness import make_settings


def test_reprocess_restates_exactly_the_days_that_changed(spark, tmp_path):
    settings = make_settings(tmp_path / "data", batch_lateness_hours=2)
    build_dataset(settings.data_dir)
    storage = FileStorage(settings.data_dir)
    for day in (P, D):
        run_day(spark, settings, day)
    store, live = EmbeddedStore(), DuckDBStore()
    sync = LakeSync(storage, store, live=live, numbers=day_numbers(store.day_totals, live))
    assert sync.sync_once() == [P, D]
    # What a rule change does to the data of some days: here, D gains an event (a late file).
    RawDataset(settings.data_dir).write(D, 16, [event("new1", ms(D, 16), "a.example", "/new", visitor="v99")])

    run = lambda days: [run_day(spark, settings, day) for day in days]  # noqa: E731 (the nightly job's)
    changes = reprocess(storage, [P, D], run)
    assert [(c.day, c.changed, c.rules) for c in changes] == [(P, False, []), (D, True, [])]  # same rules
    d = changes[1]
    assert (d.before["clean"], d.after["clean"]) == (13, 14) and d.before["bots"] == d.after["bots"]

    assert sync.sync_once() == [P, D]  # new runs of both: loaded again, each logged
    logged = restatements.read(storage, "a.example", P, D)
    assert [(r["date"], r["source"], r["difference"]["pageviews"]) for r in logged] == [
        (str(P), "final", 0),
        (str(D), "final", 1),
    ]
    restated = {r["date"] for r in logged if r["difference"] != {"pageviews": 0, "visitors": 0}}
    assert restated == {str(D)}

    with pytest.raises(NotClosed, match="2026-11-21 never closed"):
        reprocess(storage, [D, N], run)
