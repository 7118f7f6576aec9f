"""Batch-layer benchmark: events/s closing one day, PySpark job vs a DuckDB baseline, same run.

The input is one UTC day of synthetic raw events as the lander writes them (gzip JSON lines in
raw/date=D/hour=HH/), from the demo traffic model: realistic UA mix with a long tail of browser
builds, bots, referrers, campaign tags, ~1% of events redelivered (duplicates). Generated once
per size in parallel and cached (bench/results/cache/, ~70 MB per million events).

- **pixel (PySpark)**: `batch_layer.job.run_day` on a SparkSession (local[2] = this box's
  2 cores; start-up excluded by an untimed warm-up day): raw files -> mapInPandas(gunzip, Arrow's JSON
  reader with the explicit schema, events library) -> dedupe -> bad rows, clean Parquet, daily
  view (exact visitors + HLL sketches), sessions view, watermark.
- **DuckDB baseline**: what a user might write instead, in one process with DuckDB's threads:
  read_json with the same columns, the same events library through its Arrow entry point as a
  vectorized Python UDF, the bad rows of the lines it read, dedupe with QUALIFY, the clean
  Parquet, the daily view with exact visitors and HLL sketches (DuckDB has no DataSketches, so a
  Python UDF over each group's distinct visitors), the sessions view in SQL and the run's summary
  counts. Fewer guarantees than the job (the reader skips lines it can't parse instead of keeping
  them as typed bad rows; no late-event window), so it is a fair floor, not an equal.

Both are checked to produce the same clean, duplicate and bot counts and daily totals in every
round. Both warm up on a 20k-event day first; then each size runs ``--rounds`` times,
alternating engines (the box's speed drifts), and the median is reported beside every round's
time. The first round is the colder one (a fresh JVM's first big day still JIT-compiles much of
the job).

    .venv/bin/python bench/batch.py [--sizes 1000000 10000000] [--driver-memory 6g]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DAY = dt.date(2026, 11, 2)
CHUNK = 250_000
CACHE = ROOT / "bench" / "results" / "cache"


# -- the input -------------------------------------------------------------------------------


def _generate_chunk(args: tuple[Path, int, int, int]) -> int:
    from core.lake.storage import FileStorage
    from pixel.demo import TrafficModel, history, write_history

    root, index, n, visitors = args
    model = TrafficModel(sites=20, seed=index, visitors=visitors)

    def with_redeliveries(events):
        for i, event in enumerate(events):
            yield event
            if i % 100 == 0:  # Kafka redelivered it: the same event_id again
                yield event

    return write_history(FileStorage(root), with_redeliveries(history(model, DAY, n, seed=index)), partition=index)


def dataset(size: int) -> Path:
    """raw/ for ``size`` events (plus 1% redelivered copies), generated once."""
    from rich.progress import Progress

    root = CACHE / f"day-{size}-v2"  # bump when the generator changes
    done = root / "generated.json"
    if done.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    # ~3 pageviews per visitor, as on a typical content site (Plausible reports 2-4).
    chunks = [
        (root, i, n, max(100, n // 3))
        for i in range((size + CHUNK - 1) // CHUNK)
        if (n := min(CHUNK, size - i * CHUNK))
    ]
    with Progress() as progress, ProcessPoolExecutor() as pool:
        task = progress.add_task(f"generating {size:,} raw events", total=size)
        lines = 0
        for chunk, landed in zip(chunks, pool.map(_generate_chunk, chunks)):
            lines += landed
            progress.advance(task, chunk[2])
    done.write_text(json.dumps({"events": size, "lines": lines}))
    return root


def reset_outputs(root: Path) -> None:
    for name in ("clean", "views", "bad"):
        shutil.rmtree(root / name, ignore_errors=True)


# -- pixel: the PySpark job ------------------------------------------------------------------


def run_spark(spark, root: Path) -> tuple[float, dict]:
    from batch_layer.job import run_day
    from core.settings import Settings

    reset_outputs(root)
    started = time.perf_counter()
    summary = run_day(spark, Settings(data_dir=root), DAY)
    seconds = time.perf_counter() - started
    return seconds, {"clean": summary.clean, "duplicates": summary.duplicates, "bots": summary.bots}


# -- the DuckDB baseline ---------------------------------------------------------------------

from events.urls import UTM_FIELDS  # noqa: E402

ENRICHED = [
    "dedupe_key",
    "host",
    "path",
    *UTM_FIELDS,
    "referrer_host",
    "source",
    "source_class",
    "channel",
    "browser",
    "browser_major",
    "os",
    "os_major",
    "device",
    "country",
    "region",
    "city",
    "screen",  # (props: enriched too, but DuckDB's Arrow UDF can't hand a map back: the raw text is kept)
    "is_bot",
    "bad_reason",
]


def run_duckdb(root: Path, out: Path) -> tuple[float, dict]:
    import duckdb
    import pyarrow as pa

    from batch_layer.transform import RAW_ARROW_SCHEMA
    from events.aggregate import DIMENSIONS, SESSION_GAP_MS
    from events.enrich import CLEAN_COLUMNS, enrich_table
    from events.raw import RAW_SCHEMA
    from events.sketches import sketch_of

    shutil.rmtree(out, ignore_errors=True)
    (out / "clean").mkdir(parents=True)
    duck_types = {"string": "VARCHAR", "long": "BIGINT", "boolean": "BOOLEAN"}
    raw_cols = [name for name, _ in RAW_SCHEMA]
    struct_type = duckdb.struct_type(
        {name: duckdb.sqltype("BOOLEAN" if name == "is_bot" else "VARCHAR") for name in ENRICHED}
    )

    # DuckDB wants a fixed parameter list: one per raw column, in RAW_SCHEMA's order.
    assert raw_cols == [
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
        "eid",
        "lang",
        "dnt",
        "src",
        "props",
        "w",
    ]

    def enrich(
        v, event_id, ts, site, event, url, referrer, ua, ip_trunc, visitor_id, uid, eid, lang, dnt, src, props, w
    ):
        # DuckDB hands Arrow arrays over: the events library's Arrow entry point takes them as they are.
        columns = (
            v,
            event_id,
            ts,
            site,
            event,
            url,
            referrer,
            ua,
            ip_trunc,
            visitor_id,
            uid,
            eid,
            lang,
            dnt,
            src,
            props,
            w,
        )
        out = enrich_table(pa.table(dict(zip(raw_cols, columns))).cast(RAW_ARROW_SCHEMA))
        return pa.StructArray.from_arrays([out.column(name).combine_chunks() for name in ENRICHED], names=ENRICHED)

    # DuckDB's default memory limit is 80% of the box: beside Spark's JVM that is an OOM kill at
    # 10M events; with a limit it spills to disk instead.
    con = duckdb.connect(config={"memory_limit": "8GB", "temp_directory": str(out / "spill")})
    con.create_function(
        "enrich",
        enrich,
        [duckdb.sqltype(duck_types[t]) for _, t in RAW_SCHEMA],
        struct_type,
        type="arrow",
        null_handling="special",  # optional raw fields are NULL: the function decides (default: NULL out)
    )
    con.create_function("hll", sketch_of, [duckdb.list_type(duckdb.sqltype("VARCHAR"))], duckdb.sqltype("VARCHAR"))
    columns = ", ".join(f"'{n}': '{duck_types[t]}'" for n, t in RAW_SCHEMA)
    started = time.perf_counter()
    con.execute(f"""
        CREATE TABLE enriched AS
        SELECT *, enrich({", ".join(raw_cols)}) AS e
        FROM read_json('{root}/raw/date={DAY}/*/*.jsonl.gz', format = 'newline_delimited',
                       columns = {{{columns}}}, ignore_errors = true)""")
    # Bad rows, as the job writes them (DuckDB's reader skips lines it can't parse: on this input,
    # generated by the lander's own code, there are none).
    con.execute(f"""
        COPY (SELECT e.bad_reason AS reason, to_json(enriched) AS payload
              FROM enriched WHERE e.bad_reason IS NOT NULL) TO '{out}/bad.json' (FORMAT json)""")
    clean_select = ", ".join(f"e.{c} AS {c}" if c in ENRICHED else c for c in CLEAN_COLUMNS)
    con.execute(f"""
        CREATE TABLE clean AS
        SELECT {clean_select} FROM enriched WHERE e.bad_reason IS NULL
        QUALIFY row_number() OVER (PARTITION BY e.dedupe_key ORDER BY ts, event_id) = 1 AND NOT e.is_bot""")
    con.execute(
        f"COPY (SELECT * FROM clean ORDER BY site, ts) TO '{out}/clean/data.parquet' (FORMAT parquet, COMPRESSION zstd)"
    )
    empty = "''"
    # One {dimension, value} struct per dimension, unnested: a row per dimension, as in the job.
    dims = "[" + ", ".join(f"{{'dimension': '{d}', 'value': {c or empty}}}" for d, c in DIMENSIONS.items()) + "]"
    con.execute(f"""
        COPY (
          SELECT site, d.dimension, d.value, count(*) AS pageviews, count(DISTINCT visitor_id) AS visitors,
                 hll(list(DISTINCT visitor_id)) AS visitors_hll
          FROM (SELECT *, unnest({dims}) AS d
                FROM clean)
          GROUP BY ALL) TO '{out}/daily.parquet' (FORMAT parquet)""")
    entry = ", ".join(f"first({c} ORDER BY ts, event_id) AS {c}" for c in DIMENSIONS.values() if c)
    con.execute(f"""
        COPY (
          WITH hits AS (
            SELECT *, sum(CASE WHEN gap IS NULL OR gap > {SESSION_GAP_MS} THEN 1 ELSE 0 END)
                        OVER (PARTITION BY site, visitor_id ORDER BY ts, event_id) AS visit
            FROM (SELECT *, ts - lag(ts) OVER (PARTITION BY site, visitor_id ORDER BY ts, event_id) AS gap FROM clean)),
          visits AS (
            SELECT site, visitor_id, visit, count(*) AS pageviews, max(ts) - min(ts) AS duration_ms, {entry}
            FROM hits GROUP BY site, visitor_id, visit)
          SELECT site, d.dimension, d.value, count(*) AS visits, sum((pageviews = 1)::BIGINT) AS bounces,
                 sum(pageviews) AS pageviews, sum(duration_ms) AS duration_ms
          FROM (SELECT *, unnest({dims}) AS d
                FROM visits)
          GROUP BY ALL) TO '{out}/sessions.parquet' (FORMAT parquet)""")
    # The job's summary: rows read, bad, duplicates, bots, clean.
    read, bad, duplicates, bots, clean = con.execute("""
        SELECT count(*), count(*) FILTER (WHERE e.bad_reason IS NOT NULL),
               count(*) FILTER (WHERE e.bad_reason IS NULL) - count(DISTINCT e.dedupe_key),
               count(DISTINCT e.dedupe_key) FILTER (WHERE e.is_bot), (SELECT count(*) FROM clean)
        FROM enriched""").fetchone()
    seconds = time.perf_counter() - started
    return seconds, {"clean": clean, "duplicates": duplicates, "bots": bots}


def daily_totals(path: str) -> dict[str, tuple[int, int]]:
    import duckdb

    rows = duckdb.execute(
        f"SELECT site, pageviews, visitors FROM read_parquet('{path}') WHERE dimension = 'total'"
    ).fetchall()
    return {site: (pv, v) for site, pv, v in rows}


# -- the run -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument(
        "--rounds", type=int, default=3, help="runs of each engine per size, alternating; the median is reported"
    )
    parser.add_argument("--driver-memory", default="6g", help="Spark driver memory (local mode: all of Spark's)")
    parser.add_argument("--json", type=Path, help="write the results here [default: bench/results/batch.json]")
    args = parser.parse_args()

    from batch_layer.spark import spark_session
    from core.logs import setup_logging
    from core.settings import Settings

    setup_logging("bench")
    inputs = {size: dataset(size) for size in [20_000, *args.sizes]}
    spark = spark_session(Settings(spark_driver_memory=args.driver_memory))
    # Warm-up, both engines: JVM start and JIT, Python workers, the UA caches of each process.
    run_spark(spark, inputs[20_000])
    run_duckdb(inputs[20_000], CACHE / "duckdb-warmup")

    results = []
    for size in args.sizes:
        root = inputs[size]
        spark_runs, duck_runs = [], []
        for round_ in range(args.rounds):
            spark_s, spark_counts = run_spark(spark, root)
            duck_s, duck_counts = run_duckdb(root, CACHE / f"duckdb-{size}")
            print(
                f"{size:,} events, round {round_ + 1}: pixel (PySpark) {spark_s:.1f} s, DuckDB {duck_s:.1f} s",
                flush=True,
            )
            # Same answer, or the comparison means nothing.
            assert spark_counts == duck_counts, (spark_counts, duck_counts)
            assert daily_totals(f"{root}/views/daily/date={DAY}/*.parquet") == daily_totals(
                f"{CACHE}/duckdb-{size}/daily.parquet"
            )
            spark_runs.append(spark_s)
            duck_runs.append(duck_s)
        lines = json.loads((root / "generated.json").read_text())["lines"]
        raw_files = list((root / "raw").rglob("*.jsonl.gz"))
        spark_s, duck_s = statistics.median(spark_runs), statistics.median(duck_runs)
        results.append(
            {
                "events": size,
                "raw_lines": lines,
                "raw_files": len(raw_files),
                "raw_bytes": sum(f.stat().st_size for f in raw_files),
                "clean": spark_counts["clean"],
                "duplicates": spark_counts["duplicates"],
                "bots": spark_counts["bots"],
                "spark_runs_s": [round(t, 1) for t in spark_runs],
                "duckdb_runs_s": [round(t, 1) for t in duck_runs],
                "spark_s": round(spark_s, 1),
                "spark_eps": round(lines / spark_s),
                "duckdb_s": round(duck_s, 1),
                "duckdb_eps": round(lines / duck_s),
                "speedup_vs_duckdb": round(duck_s / spark_s, 2),
            }
        )
        print(json.dumps(results[-1]), flush=True)
    spark.stop()

    print(
        "\n| raw lines | clean | pixel (PySpark, local[2]) | DuckDB baseline | pixel / DuckDB | rounds (pixel; DuckDB) |"
    )
    print("|---:|---:|---:|---:|---:|---|")
    for r in results:
        runs = f"{', '.join(map(str, r['spark_runs_s']))}; {', '.join(map(str, r['duckdb_runs_s']))}"
        print(
            f"| {r['raw_lines']:,} | {r['clean']:,} | {r['spark_s']} s = {r['spark_eps']:,}/s "
            f"| {r['duckdb_s']} s = {r['duckdb_eps']:,}/s | {r['speedup_vs_duckdb']}x | {runs} |"
        )
    out = args.json or ROOT / "bench" / "results" / "batch.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
