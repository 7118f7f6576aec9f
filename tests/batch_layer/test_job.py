"""The batch job on a real SparkSession, over a raw dataset with every kind of trouble:
duplicates (redelivered and client retries, one across midnight), bots, late and too-late events,
malformed lines, an optional field of the wrong type, several sites and the neighbouring days."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
import subprocess
import sys

import duckdb
import orjson
import pytest

from batch_layer.job import run_day
from batch_layer.schedule import Nightly
from core.lake.storage import FileStorage
from core.lake.watermark import read_watermark
from events.geo import database_build
from events.sketches import estimate, sketch_of
from serving.batch.views import BatchViews
from serving.realtime.duckdb_store import DuckDBStore
from serving.store import restatements
from tests.batch_layer.rawdata import CURL, GOOGLEBOT, IPHONE, RawDataset, event, ms
from tests.harness import make_settings, settings_env
from tests.serving.conftest import agg_row

pytestmark = pytest.mark.slow

D = dt.date(2026, 11, 20)
P, N = D - dt.timedelta(days=1), D + dt.timedelta(days=1)
MALFORMED = [
    b"this is not json",
    b'{"v":1,"event_id":"x1","ts":"abc","site":"a.example"}',
    orjson.dumps({"v": 2, "event_id": "x2", "ts": ms(D, 14), "site": "a.example"}),
    orjson.dumps({"v": 1, "ts": ms(D, 14), "site": "a.example"}),
    orjson.dumps(event("x3", ms(D, 14), "")),
    orjson.dumps({**event("x4", ms(D, 14), "a.example"), "url": "javascript:alert(1)"}),
    orjson.dumps({"v": 1, "event_id": "x5", "ts": 1000, "site": "a.example"}),
    b'"just a string"',
]
BAD_REASONS = {
    "invalid_json": 1,
    "bad_field_type": 1,
    "unsupported_version": 1,
    "missing_field": 1,
    "missing_site": 1,
    "invalid_url": 1,
    "bad_timestamp": 1,
    "not_an_object": 1,
}


def build_dataset(root) -> None:
    raw = RawDataset(root)
    a = [
        event("a1", ms(D, 10, 0), "a.example", "/", visitor="v1"),
        event("a2", ms(D, 10, 10), "a.example", "/pricing", visitor="v1"),
        event("a3", ms(D, 11, 0), "a.example", "/", visitor="v1"),  # 50 min later: a second visit
        event("a4", ms(D, 10, 5), "a.example", "/", visitor="v2", referrer="https://www.google.com/"),
        event("a5", ms(D, 12, 0), "a.example", "/pricing", visitor="v3", ua=IPHONE),
        event("a6", ms(D, 13, 0, 0), "a.example", "/first", visitor="v4", eid="r1"),
        event("a7", ms(D, 13, 0, 5), "a.example", "/second", visitor="v4", eid="r1"),  # client retry
        # dnt of the wrong JSON type: the reader's schema refuses it, the event is still good.
        {**event("a8", ms(D, 10, 20), "a.example", "/about", visitor="v2"), "dnt": "yes"},
    ]
    raw.write(D, 10, a[:6])
    raw.write(D, 13, a[6:7])
    raw.write(D, 10, [a[7], a[0]])  # a1 again: redelivered by Kafka
    raw.write(D, 14, MALFORMED)
    raw.write(
        D,
        15,
        [
            event("b1", ms(D, 15, 0), "b.example", "/", visitor="v5"),
            event("b2", ms(D, 15, 1), "b.example", "/docs", visitor="v5"),
            event("b3", ms(D, 15, 2), "b.example", "/", visitor="v6"),
            event("bot1", ms(D, 15, 3), "b.example", "/", visitor="vb1", ua=GOOGLEBOT),
            event("bot2", ms(D, 15, 4), "b.example", "/", visitor="vb2", ua=CURL),
        ],
    )
    raw.write(D, 9, [event("c1", ms(D, 9), "c.example", visitor="v7")])
    raw.write(D, 23, [event("c4", ms(D, 23, 59, 50), "c.example", visitor="v10", eid="m1")])
    raw.write(
        N,
        0,
        [
            event("c2", ms(D, 23, 30), "c.example", visitor="v8"),  # late, within 2 h
            event("c5", ms(N, 0, 0, 10), "c.example", visitor="v10", eid="m1"),
        ],
    )  # retry after midnight
    raw.write(N, 5, [event("c3", ms(D, 22), "c.example", visitor="v9")])  # beyond the lateness window
    raw.write(N, 10, [event("n1", ms(N, 10), "a.example", visitor="v12")])
    raw.write(P, 23, [event("p1", ms(P, 23), "a.example", visitor="v11")])


@pytest.fixture
def data(tmp_path):
    settings = make_settings(tmp_path / "data", batch_lateness_hours=2)
    build_dataset(settings.data_dir)
    return settings


def parquet(settings, pattern: str, query: str = "SELECT * EXCLUDE (date) FROM t ORDER BY ALL") -> list[tuple]:
    con = duckdb.connect()
    con.create_function("hll_estimate", lambda sketch: estimate([sketch]), ["VARCHAR"], "BIGINT")
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{settings.data_dir}/{pattern}', hive_partitioning=true)")
    return con.execute(query).fetchall()


def bad_rows(settings, day: dt.date) -> list[dict]:
    rows = []
    for path in sorted((settings.data_dir / "bad" / f"date={day}").glob("part-*.json.gz")):
        rows += [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines() if line]
    return rows


def test_one_day_exact_counts_views_sessions_and_bad_rows(spark, data):
    summary = run_day(spark, data, D)

    assert (summary.clean, summary.bots, summary.duplicates, summary.late, summary.sites) == (13, 2, 3, 2, 3)
    assert summary.bad == BAD_REASONS
    assert summary.read == summary.clean + summary.bots + summary.duplicates + summary.bad_total == 26

    clean = parquet(
        data,
        "clean/events/*/*.parquet",
        "SELECT site, event_id, path, is_bot, ip_trunc, dnt FROM t ORDER BY site, event_id",
    )
    assert [(s, e) for s, e, *_ in clean] == [("a.example", e) for e in ("a1", "a2", "a3", "a4", "a5", "a6", "a8")] + [
        ("b.example", e) for e in ("b1", "b2", "b3")
    ] + [("c.example", e) for e in ("c1", "c2", "c4")]
    assert ("a.example", "a6", "/first") in [r[:3] for r in clean]  # earliest copy wins
    assert not any(r[3] for r in clean)  # no bots in clean data
    assert {r[4] for r in clean} == {"198.51.100.0"}  # only the truncated IP, ever
    assert [r[5] for r in clean if r[1] == "a8"] == [True]
    columns = parquet(data, "clean/events/*/*.parquet", "SELECT column_name FROM (DESCRIBE t)")
    assert not {"ip", "ua", "full_ip"} & {c for (c,) in columns}

    daily = {(s, d, v): (pv, vis, hll) for s, d, v, pv, vis, hll in parquet(data, "views/daily/*/*.parquet")}
    assert {k: v[:2] for k, v in daily.items() if k[0] == "a.example" and k[1] in ("total", "page", "browser")} == {
        ("a.example", "total", ""): (7, 4),
        ("a.example", "page", "/"): (3, 2),
        ("a.example", "page", "/pricing"): (2, 2),
        ("a.example", "page", "/first"): (1, 1),
        ("a.example", "page", "/about"): (1, 1),
        ("a.example", "browser", "Chrome"): (6, 3),
        ("a.example", "browser", "Mobile Safari"): (1, 1),
    }
    assert daily[("a.example", "source", "Google")][:2] == (1, 1)
    assert daily[("b.example", "total", "")][:2] == (3, 2)
    assert daily[("b.example", "bots", "")][:2] == (2, 2)
    assert daily[("c.example", "total", "")][:2] == (3, 3)
    # The sketch is a DataSketches HLL the speed layer's sketches union with (same hashing).
    a_hll = daily[("a.example", "total", "")][2]
    assert estimate([a_hll]) == 4
    assert estimate([a_hll, sketch_of(["v1", "v2", "v99"])]) == 5

    sessions = {(s, d, v): rest for s, d, v, *rest in parquet(data, "views/sessions/*/*.parquet")}
    # a: v1 has two visits (50 min apart), v2 one of two pages (15 min), v3 and v4 one page each.
    assert sessions[("a.example", "total", "")] == [5, 3, 7, 600_000 + 900_000]
    assert sessions[("a.example", "page", "/")] == [3, 1, 5, 1_500_000]  # entry pages
    assert sessions[("a.example", "page", "/pricing")] == [1, 1, 1, 0]
    assert sessions[("b.example", "total", "")] == [2, 1, 3, 60_000]

    bad = bad_rows(data, D)
    assert sorted(r["reason"] for r in bad) == sorted(BAD_REASONS)
    assert all(r["source"] == "batch" and r["file"].endswith(".jsonl.gz") and r["payload"] for r in bad)
    assert {r["payload"] for r in bad if r["reason"] == "invalid_json"} == {"this is not json"}
    assert read_watermark(FileStorage(data.data_dir)) == D


def test_running_a_day_twice_gives_identical_outputs(spark, data):
    held = set(spark.sparkContext._jsc.getPersistentRDDs().keySet())
    run_day(spark, data, D)
    assert set(spark.sparkContext._jsc.getPersistentRDDs().keySet()) == held  # its checkpoints are dropped
    first = {
        p: parquet(data, p)
        for p in ("clean/events/*/*.parquet", "views/daily/*/*.parquet", "views/sessions/*/*.parquet")
    }
    first_bad = sorted((r["reason"], r["payload"]) for r in bad_rows(data, D))
    run_day(spark, data, D)
    assert {p: parquet(data, p) for p in first} == first
    assert sorted((r["reason"], r["payload"]) for r in bad_rows(data, D)) == first_bad


def test_duplicated_keys_joined_by_shuffle_count_as_by_broadcast(spark, data, monkeypatch):
    """A day with more duplicated keys than a broadcast should carry takes the shuffle join."""
    import batch_layer.job as job

    run_day(spark, data, D)
    broadcast = {p: parquet(data, p) for p in ("clean/events/*/*.parquet", "views/daily/*/*.parquet")}
    monkeypatch.setattr(job, "_BROADCAST_KEYS", 0)
    spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")  # nor may Spark broadcast on its own
    try:
        summary = run_day(spark, data, D)
    finally:
        spark.conf.unset("spark.sql.autoBroadcastJoinThreshold")
    assert (summary.clean, summary.duplicates) == (13, 3)
    assert {p: parquet(data, p) for p in broadcast} == broadcast


def test_enriched_rows_serialized_or_as_objects_give_the_same_outputs(spark, data, monkeypatch):
    """A test day is small: its enriched rows are kept as objects. A big one's are serialized."""
    import batch_layer.job as job

    assert (
        job.enriched_level(sum(job.raw_inputs(FileStorage(data.data_dir), D, 2).values()), job._heap_bytes(spark))
        == job._AS_OBJECTS
    )
    run_day(spark, data, D)
    as_objects = {
        p: parquet(data, p)
        for p in ("clean/events/*/*.parquet", "views/daily/*/*.parquet", "views/sessions/*/*.parquet")
    }
    monkeypatch.setattr(job, "_OBJECT_BYTES_PER_RAW_BYTE", 1 << 40)
    summary = run_day(spark, data, D)
    assert (summary.clean, summary.duplicates) == (13, 3)
    assert {p: parquet(data, p) for p in as_objects} == as_objects


def test_views_of_visitors_in_several_partitions_add_up_to_the_same(spark, data, monkeypatch):
    """A test day's visitors are one partition; a big day's are many, each counted and sketched
    by its Python pass, and the partitions' rows added up and their sketches united by Spark."""
    import batch_layer.job as job

    def views() -> tuple[list, list]:
        return (
            parquet(
                data,
                "views/daily/*/*.parquet",
                "SELECT * EXCLUDE (date, visitors_hll), hll_estimate(visitors_hll) FROM t ORDER BY ALL",
            ),
            parquet(data, "views/sessions/*/*.parquet"),
        )

    run_day(spark, data, D)
    one = views()
    monkeypatch.setattr(job, "_view_partitions", lambda _spark, _events: 5)
    run_day(spark, data, D)
    assert views() == one and len(one[0]) > 20


@pytest.mark.fast
def test_enriched_rows_are_objects_up_to_a_quarter_of_the_heap():
    from batch_layer.job import _AS_OBJECTS, _OBJECT_BYTES_PER_RAW_BYTE, _SERIALIZED, enriched_level

    heap = 6 << 30
    fits = heap // 4 // _OBJECT_BYTES_PER_RAW_BYTE
    assert enriched_level(0, heap) == enriched_level(fits, heap) == _AS_OBJECTS
    assert enriched_level(fits + 1, heap) == _SERIALIZED


def test_the_heap_is_read_from_sparks_memory_setting(spark):
    from batch_layer.job import _heap_bytes, jvm_size

    assert spark.sparkContext.master.startswith("local")  # the driver's heap runs the tasks
    real = spark.sparkContext._jvm.java.lang.Runtime.getRuntime().maxMemory()  # less the survivor space
    assert 0.8 * _heap_bytes(spark) <= real <= _heap_bytes(spark)
    assert [jvm_size(t) for t in ("2g", "512m", "1024K", "3gb", "4096", " 1 t ")] == [
        2 << 30,
        512 << 20,
        1 << 20,
        3 << 30,
        4096,
        1 << 40,
    ]
    assert jvm_size("lots") == jvm_size("") == 1 << 30


def test_a_file_of_several_chunks_gives_every_event_once_joined_either_way(spark, tmp_path, monkeypatch):
    """The clean Parquet is written from the chunks' clean events (CHUNK_LINES lines each): a
    file of three chunks, its redelivered copies and bots in every chunk, gives each event once,
    whether the duplicated keys are broadcast or joined by a shuffle (which moves the lines away
    from their chunks' partitions, and the writer's input is brought together by file again)."""
    import batch_layer.job as job
    from batch_layer.transform import CHUNK_LINES

    settings = make_settings(tmp_path / "data")
    n = 2 * CHUNK_LINES + 100
    lines = [
        event(
            f"e{i}",
            ms(D, 10, i // 3600 % 60, i % 60),
            f"s{i % 3}.example",
            f"/p{i % 50}",
            visitor=f"v{i % 997}",
            ua=GOOGLEBOT if i % 101 == 0 else IPHONE,
        )
        for i in range(n)
    ]
    lines += lines[::500]  # redelivered copies of events from every chunk
    RawDataset(settings.data_dir).write(D, 10, lines)
    bots = len(range(0, n, 101))
    expected = sorted(f"e{i}" for i in range(n) if i % 101)

    def clean_ids() -> list[str]:
        return [e for (e,) in parquet(settings, "clean/events/*/*.parquet", "SELECT event_id FROM t ORDER BY event_id")]

    summary = run_day(spark, settings, D)
    assert (summary.read, summary.duplicates, summary.bots, summary.clean) == (
        len(lines),
        len(lines) - n,
        bots,
        n - bots,
    )
    assert clean_ids() == expected
    monkeypatch.setattr(job, "_BROADCAST_KEYS", 0)
    # No broadcast, and the join's output kept in all its shuffle partitions (AQE would merge a
    # test's few rows into one, where the lines would meet their chunks by chance).
    shuffled = {"spark.sql.autoBroadcastJoinThreshold": "-1", "spark.sql.adaptive.coalescePartitions.enabled": "false"}
    with job._session_conf(spark, shuffled):
        summary = run_day(spark, settings, D)
    assert (summary.duplicates, summary.clean) == (len(lines) - n, n - bots)
    assert clean_ids() == expected


def test_a_cut_raw_file_is_a_bad_row_and_its_whole_lines_are_used(spark, tmp_path):
    """A raw file whose gzip data ends early (a disk filled up, a copy was interrupted) doesn't
    stop the day: what it holds up to the cut is used, the cut line and the file are bad rows."""
    settings = make_settings(tmp_path / "data")
    raw = RawDataset(settings.data_dir)
    raw.write(D, 9, [event("w1", ms(D, 9), "a.example", "/", visitor="v1")])
    whole = [event(f"c{i}", ms(D, 10, 0, i % 60), "a.example", f"/p{i}", visitor=f"v{i}") for i in range(3000)]
    cut = raw.write(D, 10, whole)
    cut.write_bytes(cut.read_bytes()[:-2000])
    summary = run_day(spark, settings, D)
    assert summary.bad == {"unreadable_file": 1, "invalid_json": 1}
    assert summary.read == summary.clean + 2 and 1 < summary.clean < 3001
    unreadable = [r for r in bad_rows(settings, D) if r["reason"] == "unreadable_file"]
    assert len(unreadable) == 1 and "truncated" in unreadable[0]["detail"] and unreadable[0]["file"].endswith(cut.name)


def test_a_day_without_raw_data_closes_empty(spark, data):
    quiet = D + dt.timedelta(days=5)
    summary = run_day(spark, data, quiet)
    assert (summary.read, summary.clean, summary.sites, summary.bad) == (0, 0, 0, {})
    assert parquet(data, f"clean/events/date={quiet}/*.parquet", "SELECT count(*) FROM t") == [(0,)]
    assert parquet(data, f"views/daily/date={quiet}/*.parquet", "SELECT count(*) FROM t") == [(0,)]
    assert bad_rows(data, quiet) == []
    assert read_watermark(FileStorage(data.data_dir)) == quiet


def test_nightly_catches_up_by_backfilling_in_one_run(data, capfd):
    """The nightly scheduler finds the first raw day and runs batch_layer.submit --from P --to N."""
    night = Nightly(data, settings_env(data))
    assert night.due(dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.UTC)) == [P, D, N]
    assert night.run_once(dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.UTC)) == 0
    out = capfd.readouterr()
    summaries = [json.loads(line) for line in out.out.splitlines() if line.startswith("{")]
    assert [s["date"] for s in summaries] == [str(P), str(D), str(N)]
    assert summaries[2]["bad"].get("too_late") == 1, summaries
    assert re.search(r"closed 2026-11-21: read \d+ .*too_late 1", out.err), out.err

    storage = FileStorage(data.data_dir)
    assert read_watermark(storage) == N
    assert night.due(dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.UTC)) == []
    runs = {day: json.loads(storage.read(f"views/_runs/date={day}.json")) for day in (P, D, N)}
    assert (runs[P]["clean"], runs[D]["clean"], runs[N]["clean"]) == (1, 13, 1)
    assert runs[D]["geo_database"] == database_build() and database_build().startswith("dbip-city-lite 20")
    # Compacted before it was read: one file per hour folder and partition, every event still counted.
    assert runs[D]["raw_files"] > runs[D]["raw_files_compacted"] > 0
    for hour in storage.list_dirs(f"raw/date={D}"):
        names = [p.rsplit("/", 1)[1] for p in storage.list_files(f"raw/date={D}/{hour}")]
        assert len({name.split("-")[0] for name in names}) == len(names), names
    assert runs[N]["bad"] == {"too_late": 1}  # c3: an event of D that landed at N 05:00
    [too_late] = bad_rows(data, N)
    assert json.loads(too_late["payload"])["event_id"] == "c3" and "date=2026-11-21/hour=05" in too_late["file"]
    views = BatchViews(storage)
    assert {s: c.pageviews for s, c in views.site_totals(P).items()} == {"a.example": 1}
    assert {s: c.pageviews for s, c in views.site_totals(N).items()} == {"a.example": 1}


def test_drift_compares_the_speed_view_with_the_closed_day(spark, data):
    run_day(spark, data, D)
    store = DuckDBStore(data.realtime_db)
    # The speed view missed one of a's events, saw b exactly, and never saw c.
    store.ingest(
        [
            agg_row(ms(D, 10), 6, ["v1", "v2", "v3", "v4"], site="a.example", page="/"),
            agg_row(ms(D, 15), 3, ["v5", "v6"], site="b.example", page="/"),
        ]
    )
    store.db.close()
    cli = [sys.executable, "-m", "pixel.cli", "drift", "--date", str(D)]
    result = subprocess.run([*cli, "--json"], env=settings_env(data), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    rows = {r["site"]: r for r in json.loads(result.stdout)}
    assert (rows["a.example"]["batch_pageviews"], rows["a.example"]["speed_pageviews"]) == (7, 6)
    assert rows["a.example"]["pageviews_drift_pct"] == -14.29
    assert rows["b.example"]["pageviews_drift_pct"] == 0 and rows["b.example"]["visitors_drift_pct"] == 0
    assert rows["c.example"]["speed_pageviews"] == 0 and rows["c.example"]["pageviews_drift_pct"] == -100
    table = subprocess.run(cli, env=settings_env(data), capture_output=True, text=True, timeout=60)
    assert "a.example" in table.stdout and "-14.29%" in table.stdout

    # Once `pixel serve` has logged the day's restatement, drift reads that (what the API answered).
    restatements.record(FileStorage(data.data_dir), D, {"a.example": (5, 4)}, {"a.example": (7, 4)}, "live", "1")
    logged = subprocess.run([*cli, "--json"], env=settings_env(data), capture_output=True, text=True, timeout=60)
    assert [(r["site"], r["speed_pageviews"], r["batch_pageviews"]) for r in json.loads(logged.stdout)] == [
        ("a.example", 5, 7)
    ]

    unclosed = subprocess.run(
        [sys.executable, "-m", "pixel.cli", "drift", "--date", str(N)],
        env=settings_env(data),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unclosed.returncode == 2 and "pixel batch --date 2026-11-21" in unclosed.stderr


def test_a_closed_day_records_what_made_it(spark, data):
    import hashlib
    import importlib.metadata

    import pyarrow.parquet as pq
    from is_bot import Bots

    from batch_layer.lineage import PARQUET_KEY, TABLES

    run_day(spark, data, D)
    made_by = json.loads((data.data_dir / "views" / "_runs" / f"date={D}.json").read_text())["lineage"]
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert made_by["code"] == {"version": importlib.metadata.version("pixel-analytics"), "commit": commit}
    assert len(commit) == 40  # the tests run from a checkout
    assert made_by["ua_parser"] == {
        "version": importlib.metadata.version("ua-parser"),
        "regexes": importlib.metadata.version("ua-parser-builtins"),
    }
    patterns = hashlib.sha256("\n".join(sorted(Bots().patterns)).encode()).hexdigest()[:16]
    assert made_by["bot_list"] == {
        "version": importlib.metadata.version("is-bot"),
        "patterns": patterns,
        "own_patterns": [],  # the operator's (PIXEL_BOT_USER_AGENTS): none here
    }
    assert made_by["geo_db"] == database_build()
    assert made_by["tables"] == {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in sorted(TABLES.glob("*.csv"))
    }
    # D's folders, and the next day's first hours (the lateness window), not P's last (before 22:00).
    read = [p for p in (data.data_dir / "raw").rglob("*.jsonl.gz") if f"date={D}" in str(p) or "hour=00" in str(p)]
    read += [p for p in (data.data_dir / "raw").rglob("*.jsonl.gz") if f"date={P}/hour=23" in str(p)]
    assert made_by["inputs"] == {"files": len(read), "bytes": sum(p.stat().st_size for p in read)}
    assert made_by["run"]["started"] <= made_by["run"]["ended"] and made_by["run"]["seconds"] > 0
    assert made_by["summary"] == {
        "read": 26,
        "late": 2,
        "bad": BAD_REASONS,
        "duplicates": 3,
        "bots": 2,
        "clean": 13,
        "sites": 3,
    }
    # Each clean file says the same, but the run's end and counts (known after it is written).
    for part in (data.data_dir / "clean" / "events" / f"date={D}").glob("*.parquet"):
        in_file = json.loads(pq.read_schema(part).metadata[PARQUET_KEY])
        started = {"run": {"started": made_by["run"]["started"]}}
        assert in_file == {k: v for k, v in made_by.items() if k != "summary"} | started
    printed = subprocess.run(
        [sys.executable, "-m", "pixel.cli", "lineage", "--date", str(D), "--json"],
        env=settings_env(data),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json.loads(printed.stdout) == made_by
    missing = subprocess.run(
        [sys.executable, "-m", "pixel.cli", "lineage", "--date", str(N)],
        env=settings_env(data),
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "pixel batch --date 2026-11-21" in missing.stderr


def test_rejected_events_per_site_equal_the_days_counts(spark, data):
    summary = run_day(spark, data, D)
    rows = parquet(data, f"views/rejected/date={D}/*.parquet", "SELECT site, reason, family, events, samples FROM t")
    by_reason: dict[str, int] = {}
    for _site, reason, _family, events, _samples in rows:
        by_reason[reason] = by_reason.get(reason, 0) + events
    assert by_reason == {**summary.bad, "duplicate": summary.duplicates, "bot": summary.bots}
    bots = {(site, family): events for site, reason, family, events, _ in rows if reason == "bot"}
    assert bots == {("b.example", "Googlebot"): 1, ("b.example", "curl"): 1}  # by bot family
    for _site, reason, _family, _events, samples in rows:
        assert 1 <= len(samples) <= 3 and len(set(samples)) == len(samples)
        for sample in map(json.loads, samples):
            if reason in ("bot", "duplicate"):  # a hit: no address at all
                assert set(sample) <= {"ts", "page", "source", "browser"} and sample["ts"] > 0
            else:  # a bad row: when and why (its payload stays in bad/date=D/)
                assert set(sample) <= {"ts", "detail"} and sample["detail"]
    duplicates = {site: events for site, reason, _f, events, _ in rows if reason == "duplicate"}
    assert duplicates == {"a.example": 2, "c.example": 1}  # a1 redelivered, a7 a client retry; c5 a retry

    # The API: one site's, over the closed days of the period.
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from serving.batch.rejected import rejected
    from serving.stats_api import stats_router

    app = FastAPI()
    reader = lambda site, first, last: rejected(FileStorage(data.data_dir), site, first, last)  # noqa: E731
    app.include_router(stats_router(None, lambda: N, lambda site, token: True, rejected=reader))
    answer = TestClient(app).get("/api/v1/stats/rejected", params={"site_id": "b.example", "period": "7d"}).json()
    assert [(r["reason"], r["family"], r["events"]) for r in answer["results"]] == [
        ("bot", "Googlebot", 1),
        ("bot", "curl", 1),
    ]
    assert answer["results"][0]["samples"][0]["page"] == "/"
    a = rejected(FileStorage(data.data_dir), "a.example", D, D)
    assert {r["reason"]: r["events"] for r in a} == {reason: n for s, reason, _f, n, _x in rows if s == "a.example"}
    assert rejected(FileStorage(data.data_dir), "a.example", N, N) == []  # not closed
