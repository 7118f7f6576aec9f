"""Reprocessing closed days: the real nightly job (Spark) closes them again, the summary says what
changed per day, and the serving process's next sync reloads them and logs the restatement of
exactly the days whose numbers changed."""

from __future__ import annotations

import json

import pytest

from batch_layer.job import run_day
from batch_layer.reprocess import NotClosed, reprocess
from core.lake import layout
from core.lake.storage import FileStorage
from serving.app import day_numbers
from serving.realtime.duckdb_store import DuckDBStore
from serving.store import restatements
from serving.store.embedded import EmbeddedStore
from serving.store.sync import LakeSync
from tests.batch_layer.rawdata import RawDataset, event, ms
from tests.batch_layer.test_job import D, N, P, build_dataset
from tests.harness import make_settings

# The browser of a kiosk screen that reloads the page all day: no built-in rule calls it a bot.
KIOSK = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 "
    "AcmeKiosk/3.0"
)


def test_reprocess_after_a_rule_change_restates_exactly_the_days_it_changes(spark, tmp_path):
    settings = make_settings(tmp_path / "data", batch_lateness_hours=2)
    build_dataset(settings.data_dir)
    # Only D has the kiosk's hits: two pageviews of a.example, one visitor.
    kiosks = [event(f"kiosk{i}", ms(D, 16, i), "a.example", "/", visitor="v99", ua=KIOSK) for i in range(2)]
    RawDataset(settings.data_dir).write(D, 16, kiosks)
    storage = FileStorage(settings.data_dir)
    for day in (P, D):
        run_day(spark, settings, day)
    store, live = EmbeddedStore(), DuckDBStore()
    sync = LakeSync(storage, store, live=live, numbers=day_numbers(store.day_totals, live))
    assert sync.sync_once() == [P, D]
    before = store.day_totals(D)["a.example"]

    # The operator's rule: the kiosk is a bot. Today's rules are the settings' (pixel reprocess).
    ruled = make_settings(tmp_path / "data", batch_lateness_hours=2, bot_user_agents=["acmekiosk/"])
    run = lambda days: [run_day(spark, ruled, day) for day in days]  # noqa: E731 (the nightly job's)
    changes = reprocess(storage, [P, D], run)
    assert [(c.day, c.changed, c.rules) for c in changes] == [(P, False, ["bot_list"]), (D, True, ["bot_list"])]
    d = changes[1]
    assert (d.after["bots"] - d.before["bots"], d.before["clean"] - d.after["clean"]) == (2, 2)
    assert d.after["read"] == d.before["read"]
    assert lineage_of(storage, D)["bot_list"]["own_patterns"] == ["acmekiosk/"]

    assert sync.sync_once() == [P, D]  # new runs of both: loaded again, each logged
    logged = restatements.read(storage, "a.example", P, D)
    assert [(r["date"], r["source"], r["difference"]) for r in logged] == [
        (str(P), "final", {"pageviews": 0, "visitors": 0}),
        (str(D), "final", {"pageviews": -2, "visitors": -1}),
    ]
    assert store.day_totals(D)["a.example"] == (before[0] - 2, before[1] - 1)
    # Other sites' numbers on D stay as they were: nothing of theirs matched the rule.
    assert not any(
        r["difference"] != {"pageviews": 0, "visitors": 0} for r in restatements.read(storage, "b.example", P, D)
    )

    with pytest.raises(NotClosed, match="2026-11-21 never closed"):
        reprocess(storage, [D, N], run)


def lineage_of(storage, day) -> dict:
    return json.loads(storage.read(layout.run_summary(day)))["lineage"]
