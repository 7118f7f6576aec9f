"""The nightly batch job: one UTC day of the raw dataset -> bad rows, clean Parquet, batch views.

For day D it reads the raw folders of D, the first ``batch_lateness_hours`` of D+1 (events that
landed late) and the last ``batch_lateness_hours`` of D-1 (so a retry just after midnight dedupes
against its original), and assigns every event by its own timestamp:

1. Spark reads the raw files as stored; ``mapInPandas`` gunzips them, parses their lines with
   the explicit raw schema and runs the events library (batch_layer/transform.py) -> per line,
   a narrow row (keys, view dimensions, a typed bad reason) and, once per chunk of lines, the
   chunk's clean events as one Arrow value. The result is checkpointed once (local checkpoint):
   every output below reads it, none reads the raw data again.
2. Deduplication by dedupe_key, earliest wins; a key belongs to the day of its earliest copy.
3. Outputs, each a whole-directory overwrite so re-running a day reproduces it:
   ``clean/events/date=D/`` (Parquet, no bots: written by the Python workers from the chunks,
   batch_layer/clean_parts.py), ``bad/date=D/`` (JSON lines, bad-row shape; the day's counts
   are taken on the same scan), ``views/daily/date=D/`` and ``views/sessions/date=D/``
   (Parquet, from one Python pass over the day's visitors), then ``views/_watermark`` advances atomically
   and the day's summary is kept at ``views/_runs/date=D.json``.

An event found in D's folders that belongs to a day whose run can't see that folder (it came in
beyond the lateness window) is not dropped: it becomes a ``too_late`` bad row of D.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from batch_layer import lineage
from batch_layer.clean_parts import PART_INPUT_COLUMNS, PART_OUTPUT_SCHEMA, parquet_bytes, write_clean_parts
from batch_layer.compaction import compact_day
from batch_layer.spark import struct_of
from batch_layer.transform import CLEAN_ARROW, LINE_SCHEMA, enrich_files
from batch_layer.views.one_pass import PASS_COLUMNS, VIEW_SUMS_SCHEMA, VISIT_SUM_COLUMNS, view_sums
from batch_layer.views.visits import SUM_COLUMNS
from core.lake import layout
from core.lake.storage import Storage, open_storage
from core.lake.watermark import advance_watermark
from core.settings import Settings
from events.aggregate import VIEW_KEYS
from events.badrows import BadReason
from events.geo import database_build
from events.rules import Rules

log = logging.getLogger(__name__)

# Checkpoints kept as row objects: no Java serialization of every row on the way in and out.
# The small ones (a day's duplicated keys, the clean writers' report, the views' sums) always
# are; the enriched lines only while they fit well in memory (see enriched_level).
_AS_OBJECTS = StorageLevel.MEMORY_AND_DISK_DESER
_SERIALIZED = StorageLevel.MEMORY_AND_DISK
# The enriched lines (a narrow row each, and the chunks' events) as objects take ~9.3x their raw
# gzip bytes (a 1M-event day: 56 MB of gzip, 515 MB as objects, 240 MB serialized).
_OBJECT_BYTES_PER_RAW_BYTE = 10
FILES_STRUCT = "path string, content binary"
LINE_STRUCT = struct_of(LINE_SCHEMA)


@dataclass
class DaySummary:
    date: str
    read: int = 0  # rows of this day: read == bad + duplicates + bots + clean
    late: int = 0  # ... of which found in another day's folders (landed late)
    bad: dict[str, int] = field(default_factory=dict)  # reason -> rows
    duplicates: int = 0
    bots: int = 0
    clean: int = 0
    sites: int = 0
    seconds: float = 0.0
    geo_database: str = ""  # the IP location database that located the day's events
    lineage: dict = field(default_factory=dict)  # what made the day (batch_layer.lineage)
    raw_files: int = 0  # the day's raw and bad raw files before compaction ...
    raw_files_compacted: int = 0  # ... and after compaction (one per hour folder and partition)

    @property
    def bad_total(self) -> int:
        return sum(self.bad.values())


def raw_input_files(storage: Storage, day: dt.date, lateness_hours: int) -> dict[str, int]:
    """The raw files day D's run reads (relative paths), from what the store holds, each with its
    bytes: the day's hour folders and those of its neighbours within the lateness window."""
    files: dict[str, int] = {}
    for offset in (-1, 0, 1):
        folder_day = (day + dt.timedelta(days=offset)).isoformat()
        for path, size in storage.file_sizes(layout.day_dir(layout.RAW, folder_day)).items():
            place = layout.hour_place(path)
            if place and _read_hour(offset, place[1], lateness_hours):
                files[path] = size
    return files


def _read_hour(offset: int, hour: int, lateness_hours: int) -> bool:
    """Does day D's run read this hour of day D + ``offset`` (-1, 0, 1)? Its own day's, and the
    neighbours' within the lateness window."""
    return offset == 0 or (offset == 1 and hour < lateness_hours) or (offset == -1 and hour >= 24 - lateness_hours)


def input_folders(files: dict[str, int]) -> dict[str, int]:
    """The hour folders of raw files (in time order), each with the bytes of its files."""
    folders: dict[str, int] = {}
    for path, size in files.items():
        day, hour = layout.hour_place(path)
        folder = layout.hour_dir(layout.RAW, day, hour)
        folders[folder] = folders.get(folder, 0) + size
    return dict(sorted(folders.items()))  # date=YYYY-MM-DD/hour=HH: the names sort in time order


def raw_inputs(storage: Storage, day: dt.date, lateness_hours: int) -> dict[str, int]:
    """The raw hour folders day D's run reads (relative paths, in order), each with the bytes of
    its files."""
    return input_folders(raw_input_files(storage, day, lateness_hours))


def _covered(file_day: Column, file_hour: Column, event_day: Column, lateness: int) -> Column:
    """Does the run of ``event_day`` read this folder? (Mirrors raw_inputs.)"""
    return (
        (event_day == file_day)
        | ((event_day == F.date_sub(file_day, 1)) & (file_hour < lateness))
        | ((event_day == F.date_add(file_day, 1)) & (file_hour >= 24 - lateness))
    )


def run_day(
    spark: SparkSession, settings: Settings, day: dt.date, stage: Callable[[str], None] = lambda _s: None
) -> DaySummary:
    """Run the job for one day. ``stage(name)`` is told as each stage starts (progress bars)."""
    started = time.monotonic()
    started_at = dt.datetime.now(dt.UTC)
    storage = open_storage(settings.storage_root, settings.hdfs_user)
    root = settings.spark_root
    summary = DaySummary(day.isoformat(), geo_database=database_build())
    lateness = settings.batch_lateness_hours

    checkpoints = _Checkpoints(spark)
    try:
        stage("compacting raw files")
        compacted = compact_day(storage, day)
        summary.raw_files, summary.raw_files_compacted = compacted.files_before, compacted.files_after
        stage("reading + enriching raw")
        files = raw_input_files(storage, day, lateness)
        inputs = input_folders(files)
        if not inputs:
            log.info("%s: no raw data", day)
        # The raw data is read and enriched once; every output below comes from this checkpoint.
        # (A local checkpoint, not persist(): building Spark's columnar cache of these rows took
        # 5.7 s per 1M rows, the checkpoint 0.3-0.5 s. Lineage ends here: should an executor be
        # lost, the run fails and is re-run, which overwrites the same outputs.)
        level = enriched_level(sum(inputs.values()), _heap_bytes(spark))
        log.info(
            "%s: %d raw folders, %.1f MB; enriched rows kept %s",
            day,
            len(inputs),
            sum(inputs.values()) / 1e6,
            "as objects" if level == _AS_OBJECTS else "serialized",
        )
        with _even_raw_splits(spark):
            lines = checkpoints.take(_enriched(spark, [f"{root}/{d}" for d in inputs], settings.rules), level)

        stage("deduplicating")
        flagged, in_place = _flagged(spark, checkpoints, lines, day, lateness)

        stage("writing clean events")
        staging = layout.clean_staging_dir(day)
        summary.lineage = {
            **lineage.rules(settings.rules),
            "inputs": lineage.inputs(files),
            "run": lineage.run(started_at),
        }
        written = _write_clean_events(checkpoints, flagged, in_place, storage, settings, day, staging, summary.lineage)

        stage("writing bad rows + counting")
        of_day = flagged.where((F.col("_event_day") == _date(day)) | (F.col("_file_day") == _date(day)))
        _write_bad_rows(of_day, written.too_late, f"{root}/{layout.day_dir(layout.BAD, day)}", lateness, summary)
        _publish_clean_events(storage, written, summary, staging, layout.day_dir(layout.CLEAN, day))
        _write_rejected(of_day, storage, layout.view_dir(layout.REJECTED_VIEW, day))

        stage("building views")
        _write_views(checkpoints, of_day.where(F.col("_mine") & F.col("_first")), summary.clean, root, day)
    finally:
        checkpoints.drop()
    summary.seconds = round(time.monotonic() - started, 2)
    summary.lineage |= {"run": lineage.run(started_at, dt.datetime.now(dt.UTC))}
    summary.lineage["summary"] = lineage.summary_of(asdict(summary))
    storage.write_atomic(layout.run_summary(day), json.dumps(asdict(summary), indent=1).encode())
    advance_watermark(storage, day)
    stage("done")
    return summary


def enriched_level(raw_bytes: int, heap_bytes: int) -> StorageLevel:
    """How the enriched lines are checkpointed: as row objects while they take at most a quarter
    of an executor's heap, else serialized (a few large blocks instead of millions of objects for
    the garbage collector to trace, spilling to disk).

    Every later step scans these rows; as objects, nothing is deserialized on the way (a
    1M-event day, ~9% of a 6 GB heap, runs ~7% faster). A 10M-event day's rows would take ~90%
    of the heap, and the garbage collector's tracing of them costs more than deserializing."""
    return _AS_OBJECTS if raw_bytes * _OBJECT_BYTES_PER_RAW_BYTE <= heap_bytes // 4 else _SERIALIZED


def _heap_bytes(spark: SparkSession) -> int:
    """The heap of an executor (in local mode, the driver's: it runs the tasks), from Spark's setting."""
    context = spark.sparkContext
    setting = "spark.driver.memory" if context.master.startswith("local") else "spark.executor.memory"
    return jvm_size(context.getConf().get(setting, "1g"))


_JVM_SIZE = re.compile(r"\s*(\d+)\s*([kmgtp]?)b?\s*", re.IGNORECASE)


def jvm_size(text: str) -> int:
    """A JVM memory size as Spark's settings write it (2g, 512m, 1024k, bytes), in bytes;
    what it can't read counts as Spark's default, 1g."""
    match = _JVM_SIZE.fullmatch(text)
    if not match:
        return 1 << 30
    number, unit = int(match.group(1)), match.group(2).lower()
    return number * 1024 ** ("kmgtp".index(unit) + 1) if unit else number


def _enriched(spark: SparkSession, paths: list[str], rules: Rules) -> DataFrame:
    """Raw files -> a row per line (LINE_SCHEMA): the events library's verdict (the clean
    columns Spark reads, or a bad reason), the raw file, folder and line number it came from,
    on each chunk's first line the chunk's events, and a row number (``_row``: 8 bytes that tell
    exact redelivered copies apart, where (file, line) would carry a path through the dedupe)."""
    enrich = functools.partial(enrich_files, now_ms=int(time.time() * 1000), rules=rules)
    return read_files(spark, paths).mapInPandas(enrich, LINE_STRUCT).withColumn("_row", F.monotonically_increasing_id())


def _date(day: dt.date) -> Column:
    return F.lit(day.isoformat()).cast("date")


# Copies of a dedupe key are ordered by (ts, event_id), the row number breaking ties between
# exact copies (Kafka redeliveries); the first one is the event.
_ORDER = ("ts", "event_id", "_row")
# Up to this many duplicated keys are joined by broadcast (~100 bytes each; their hashes, 8);
# beyond, by shuffle.
_BROADCAST_KEYS = 500_000


def _flagged(
    spark: SparkSession, checkpoints: _Checkpoints, lines: DataFrame, day: dt.date, lateness: int
) -> tuple[DataFrame, bool]:
    """Every line read, flagged: ``_first`` (the copy that counts), ``_event_day`` (the day its
    event belongs to), ``_mine`` (that is D), ``_too_late`` (found in D's folders, of a day
    whose run can't see them); and whether the lines kept the checkpoint's partitions (the
    duplicated keys were broadcast, not joined by a shuffle).

    Deduplication finds the keys that occur more than once (~1% of a day, _copies) and joins them
    back, instead of a window over the whole rows, which shuffled and sorted every wide row of the
    day (1M rows: +1.7 s over a scan vs +2.7 s)."""
    good = F.col("bad_reason").isNull()
    D = _date(day)
    copies, keys = _copies(spark, checkpoints, lines.where(good))
    broadcast = keys <= _BROADCAST_KEYS
    log.info("%s: %d keys with copies, joined by %s", day, keys, "broadcast" if broadcast else "shuffle")
    if broadcast:
        copies = F.broadcast(copies)
    earliest = F.col("_earliest")
    event_day = F.to_date(F.timestamp_millis(F.coalesce(earliest.getField("ts"), F.col("ts"))))
    flagged = (
        # The key renamed: both sides come from ``lines``, whose columns the checkpoint keeps
        # the identity of (Spark warned of a trivially true condition, and resolved it right).
        lines.join(copies, (F.col("dedupe_key") == F.col("_key")) & good, "left")
        .drop("_key")
        .withColumn("_first", good & (earliest.isNull() | (F.struct(*_ORDER) == earliest)))
        .withColumn("_event_day", F.when(good, event_day))
        .withColumn("_mine", F.coalesce(F.col("_event_day") == D, F.lit(False)))
        .withColumn(
            "_too_late",
            good
            & (F.col("_file_day") == D)
            & ~F.col("_mine")
            & ~_covered(F.col("_file_day"), F.col("_file_hour"), F.col("_event_day"), lateness),
        )
    )
    return flagged, broadcast


def _copies(spark: SparkSession, checkpoints: _Checkpoints, lines: DataFrame) -> tuple[DataFrame, int]:
    """The dedupe keys these lines hold more than once (``_key``), each with its earliest copy's
    order (``_earliest``: a struct of _ORDER), checkpointed, and how many there are.

    In two steps, so that only ~1% of the lines go through the aggregation that orders copies
    (a sort of its whole input by key: the minimum of a struct has no fixed-width buffer for a
    hash aggregation). First the 64-bit hashes of the keys that occur more than once, counted by
    a hash aggregation of 8 bytes per line; then, among the lines of those hashes, the keys that
    really occur more than once (a hash another key shares makes no copy) and their earliest.
    1M events: 2.3 -> 1.5 s."""
    # Its result is small, but all of a day's keys go through its final aggregation: kept on
    # every core (AQE would merge the shuffle of 1M keys into one task). Nearly every key is
    # unique, so an aggregation before the shuffle would reduce nothing for the cost of a map of
    # every key: skipped.
    with _session_conf(
        spark,
        {
            "spark.sql.adaptive.coalescePartitions.parallelismFirst": "true",
            "spark.sql.execution.bypassPartialAggregation": "true",
        },
    ):
        repeated, hashes = _counted(
            checkpoints,
            lines.groupBy(F.xxhash64("dedupe_key").alias("_hash")).count().where("count > 1").select("_hash"),
        )
    if hashes <= _BROADCAST_KEYS:
        repeated = F.broadcast(repeated)
    candidates = lines.join(repeated, F.xxhash64("dedupe_key") == F.col("_hash"), "left_semi")
    return _counted(
        checkpoints,
        candidates.groupBy(F.col("dedupe_key").alias("_key"))
        .agg(F.min(F.struct(*_ORDER)).alias("_earliest"), F.count("*").alias("_copies"))
        .where("_copies > 1")
        .drop("_copies"),
    )


def _counted(checkpoints: _Checkpoints, df: DataFrame) -> tuple[DataFrame, int]:
    """The DataFrame checkpointed, and its rows, counted by the checkpoint's own job (a count()
    after it was one more job: ~0.1 s of scheduling for a number)."""
    rows = Observation("rows")
    return checkpoints.take(df.observe(rows, F.count(F.lit(1)).alias("n"))), rows.get["n"]


@dataclass
class _Written:
    """What the clean Parquet's writers report: the events their parts hold, and the too-late
    lines' clean events (file, line, payload: bad rows of the day; None when there are none)."""

    events: int
    too_late: DataFrame | None


def _write_clean_events(
    checkpoints: _Checkpoints,
    flagged: DataFrame,
    in_place: bool,
    storage: Storage,
    settings: Settings,
    day: dt.date,
    staging: str,
    made_by: dict,
) -> _Written:
    """The day's clean Parquet, written by the Python workers from the chunks' events
    (batch_layer/clean_parts.py) into ``staging``.

    The writers get each chunk and only the lines Spark flags as exceptions: a later copy of a
    key, a too-late event. Each needs the chunks of every file whose lines it has: a broadcast
    join kept each file's lines in the partition its chunks are in; after a shuffle join (a day
    of more duplicated keys than _BROADCAST_KEYS) the rows are brought together by file again."""
    storage.remove_dir(staging)  # what a failed run left there
    later_copy = F.col("bad_reason").isNull() & ~F.col("_first")
    rows = flagged.where(F.col("chunk").isNotNull() | later_copy | F.col("_too_late")).select(
        "file", "line", "chunk", later_copy.alias("later_copy"), F.col("_too_late").alias("too_late")
    )
    assert rows.columns == PART_INPUT_COLUMNS
    if not in_place:
        rows = rows.repartition("file")
    write = functools.partial(
        write_clean_parts,
        day=day,
        storage_url=settings.storage_root,
        hdfs_user=settings.hdfs_user,
        folder=staging,
        lineage=json.dumps(made_by, sort_keys=True),
    )
    # The writers run in the checkpoint's job, which also counts what they report.
    counts = Observation("clean parts")
    report = checkpoints.take(
        rows.mapInArrow(write, struct_of(PART_OUTPUT_SCHEMA)).observe(
            counts, F.sum("events").alias("events"), F.count("line").alias("too_late")
        )
    )
    events, too_late = counts.get["events"], counts.get["too_late"]
    return _Written(
        events or 0, report.where(F.col("part").isNull()).select("file", "line", "payload") if too_late else None
    )


def _publish_clean_events(storage: Storage, written: _Written, summary: DaySummary, staging: str, target: str) -> None:
    """The staging folder becomes the day's folder, if its parts hold exactly the day's clean
    events as the summary counts them (else the run fails and the day stays as it was)."""
    if written.events != summary.clean:
        raise RuntimeError(
            f"the clean Parquet written for {summary.date} holds {written.events} events, the day's "
            f"count is {summary.clean}: not published ({storage.url}/{staging} kept to inspect)"
        )
    if not written.events:  # a day without clean events is an empty file, not no file
        empty = parquet_bytes(CLEAN_ARROW.empty_table(), json.dumps(summary.lineage, sort_keys=True))
        storage.write_atomic(f"{staging}/part-00000.parquet", empty)
    storage.replace_dir(staging, target)


def _duplicate() -> Column:
    """A later copy of one of the day's events (the summary's duplicates)."""
    return F.col("_mine") & ~F.col("_first")


def _counted_bot() -> Column:
    """A bot's event of the day, counted once (the summary's bots)."""
    return F.col("_mine") & F.col("_first") & F.col("is_bot")


def _summary_metrics() -> list[Column]:
    """The day's summary as aggregates over the flagged rows (with their bad ``reason``):
    read == bad + duplicates + bots + clean."""
    mine, first, bot, reason = F.col("_mine"), F.col("_mine") & F.col("_first"), F.col("is_bot"), F.col("reason")

    def rows(condition: Column) -> Column:
        return F.count(F.when(condition, 1))

    return [
        rows(mine).alias("read"),
        rows(mine & (F.col("_file_day") != F.col("_event_day"))).alias("late"),
        rows(_duplicate()).alias("duplicates"),
        rows(_counted_bot()).alias("bots"),
        rows(first & ~bot).alias("clean"),
        F.size(F.collect_set(F.when(mine, F.col("site")))).alias("sites"),
        *(rows(reason == r.value).alias(f"bad:{r.value}") for r in BadReason),
    ]


def _fill_summary(summary: DaySummary, metrics: dict) -> None:
    for name in ("late", "duplicates", "bots", "clean", "sites"):
        setattr(summary, name, metrics[name])
    summary.bad = {name.removeprefix("bad:"): n for name, n in metrics.items() if name.startswith("bad:") and n}
    summary.read = metrics["read"] + summary.bad_total


SAMPLES = 3  # per site, reason and bot family
REJECTED_ARROW = pa.schema(
    [
        ("site", pa.string()),
        ("reason", pa.string()),
        ("family", pa.string()),
        ("events", pa.int64()),
        ("samples", pa.list_(pa.string())),
    ]
)


def _write_rejected(of_day: DataFrame, storage: Storage, folder: str) -> None:
    """Per site, reason and bot family: the day's rejected events and a few samples (no IP).
    Reasons: the bad rows' (too_late among them), ``duplicate`` (a later copy of an event) and
    ``bot``, counted as the day's summary counts them."""
    reason = (
        F.when(_bad_reason().isNotNull(), _bad_reason())
        .when(_duplicate(), F.lit("duplicate"))
        .when(_counted_bot(), F.lit("bot"))
    )
    key = ["site", "reason", "family"]
    rows = of_day.select(
        F.coalesce("site", F.lit("")).alias("site"),
        reason.alias("reason"),
        F.when(reason == "bot", F.coalesce("browser", F.lit(""))).otherwise(F.lit("")).alias("family"),
        "ts",
        F.col("path").alias("page"),
        "source",
        "browser",
        F.col("bad_detail").alias("detail"),
    ).where(F.col("reason").isNotNull())
    # The counts with each group's first and last time; then the rows at those times are the
    # samples. (Collecting samples in the aggregation itself took ~3 s a 1M-event day: an object
    # aggregate over every rejected row.)
    groups = rows.groupBy(*key).agg(F.count(F.lit(1)).alias("events"), F.min("ts").alias("t0"), F.max("ts").alias("t1"))
    collected = groups.collect()
    found = {tuple(g[k] for k in key): {**{k: g[k] for k in key}, "events": g.events, "samples": []} for g in collected}
    wanted = {(g.site, g.reason, g.family, t) for g in collected for t in (g.t0, g.t1)}
    times = sorted({t for *_k, t in wanted if t is not None})
    picked = rows.where(F.col("ts").isin(times)).collect() if times else []
    if any(g.t0 is None for g in collected):  # groups of rows without a time (a cut file's): a few of them
        picked += rows.where(F.col("ts").isNull()).limit(100 * SAMPLES).collect()
    for row in picked:
        if (row.site, row.reason, row.family, row.ts) not in wanted:
            continue
        samples, sample = found[(row.site, row.reason, row.family)]["samples"], _sample(row.reason, row.asDict())
        if sample not in samples and len(samples) < SAMPLES:
            samples.append(sample)
    # A few rows per site: written by the driver (Spark's file commit costs more).
    table = pa.Table.from_pylist(list(found.values()), schema=REJECTED_ARROW).sort_by([("site", "ascending")])
    storage.remove_dir(folder)
    storage.write_atomic(f"{folder}/part-00000.parquet", parquet_bytes(table))


def _sample(reason: str, fields: dict) -> str:
    """A rejected event as the site's owner sees it: a hit's time, page, source and browser; a bad
    row's time and why it was refused. Never an address."""
    keys = ("ts", "page", "source", "browser") if reason in ("bot", "duplicate") else ("ts", "detail")
    return json.dumps({key: fields[key] for key in keys if fields[key] is not None})


def _bad_reason() -> Column:
    """Why a flagged row is a bad row of the day (null: it isn't)."""
    return F.when(F.col("bad_reason").isNotNull(), F.col("bad_reason")).when(
        F.col("_too_late"), F.lit(BadReason.TOO_LATE.value)
    )


def read_files(spark: SparkSession, folders: list[str]) -> DataFrame:
    """The raw files of these folders (``*.jsonl.gz``), one row each: its path and its bytes as
    stored (still compressed). Folders, not a glob of files: Spark lists a few folders itself,
    where a glob's hundred-odd files became a listing job of their own (~0.5 s a day)."""
    if not folders:
        return spark.createDataFrame([], FILES_STRUCT)
    return (
        spark.read.format("binaryFile").option("pathGlobFilter", "*.jsonl.gz").load(folders).select("path", "content")
    )


def _write_bad_rows(
    of_day: DataFrame, too_late: DataFrame | None, path: str, lateness: int, summary: DaySummary
) -> None:
    """Bad rows in the shape of every other bad row on the platform (events.badrows), and the
    day's summary, observed on the same scan (a separate aggregation read every row again).
    The observation sees only the few columns it and the bad rows need (an observation is not
    compiled into the scan's code: every row that reaches it is copied whole). A too-late
    event's payload is its clean event (``too_late``: file, line, payload; None: there are none)."""
    reason = _bad_reason()
    late_detail = F.concat(
        F.lit("event of "),
        F.col("_event_day").cast("string"),
        F.lit(f" landed beyond the {lateness} h lateness window"),
    )
    if too_late is not None:  # rare: only events landed beyond the window
        of_day = of_day.join(
            F.broadcast(too_late.withColumnRenamed("payload", "_clean_event")), ["file", "line"], "left"
        ).withColumn("payload", F.coalesce("payload", "_clean_event"))
    rows = of_day.select(
        "site",
        "_mine",
        "_first",
        "is_bot",
        "_file_day",
        "_event_day",
        "file",
        reason.alias("reason"),
        F.when(F.col("_too_late"), late_detail).otherwise(F.coalesce("bad_detail", F.lit(""))).alias("detail"),
        F.when(reason.isNotNull(), F.col("payload")).alias("payload"),
    )
    observation = Observation("day summary")
    rows.observe(observation, *_summary_metrics()).where(F.col("reason").isNotNull()).select(
        F.lit(1).alias("v"),
        "reason",
        "detail",
        F.lit("batch").alias("source"),
        F.lit(int(time.time() * 1000)).alias("ts"),
        "payload",
        F.octet_length("payload").alias("payload_bytes"),
        "file",
    ).repartition(1).write.mode("overwrite").option("compression", "gzip").json(
        path
    )  # one file; the scan stays parallel
    _fill_summary(summary, observation.get)


# A visitor (ids are per site), visitor_id first: sorting by it, the sort's 8-byte key prefix
# tells almost any two rows apart (by site first, 20 sites, it told none: every comparison went on
# to the whole key).
_VISITOR = ("visitor_id", "site")


def _write_views(checkpoints: _Checkpoints, day_events: DataFrame, clean_count: int, root: str, day: dt.date) -> None:
    """views/daily and views/sessions of the day from the day's events (clean ones and bot hits).

    Both views work per visitor: the events are partitioned by visitor (_VISITOR), each
    visitor's hits together and in time order, and one Python pass over each partition's whole
    visitors gives every number of both views (batch_layer.views.one_pass): pageviews, exact visitor
    counts and sketches, visit sums. Spark adds up the partitions' rows per key and unites their
    sketches. Hits of one visitor at the same millisecond keep the order they were read in
    (``_row``, 8 bytes: the event id, 36, made the shuffle ~25% wider). Why the sketches are
    made in the pass and not by Spark: batch_layer.views.daily_counts.DailyCounts. One file per view, by
    repartition(1): coalesce(1) would run the aggregation in one task."""
    spark = day_events.sparkSession
    with _session_conf(spark, _VIEW_BATCHES):
        sums = checkpoints.take(
            day_events.select(*PASS_COLUMNS, "_row")
            .repartition(_view_partitions(spark, clean_count), *_VISITOR)
            .sortWithinPartitions(*_VISITOR, "ts", "_row")
            .select(*PASS_COLUMNS)
            .mapInArrow(view_sums, struct_of(VIEW_SUMS_SCHEMA))
            .groupBy(*VIEW_KEYS)
            .agg(
                *(
                    F.hll_union_agg(name).alias(name) if name == "visitors_hll" else F.sum(name).alias(name)
                    for name, _ in VIEW_SUMS_SCHEMA
                    if name not in VIEW_KEYS
                )
            )
        )
    # Every key of the day has hits (pageviews); keys no visit entered on have no visit sums.
    sums.where(F.col("pageviews").isNotNull()).select(
        *VIEW_KEYS, "pageviews", "visitors", F.base64("visitors_hll").alias("visitors_hll")
    ).repartition(1).sortWithinPartitions("site", "dimension", F.desc("pageviews")).write.mode("overwrite").parquet(
        f"{root}/{layout.view_dir(layout.DAILY_VIEW, day)}"
    )
    sums.where(F.col("visits").isNotNull()).select(
        *VIEW_KEYS, *(F.col(visit).alias(name) for visit, name in zip(VISIT_SUM_COLUMNS, SUM_COLUMNS))
    ).repartition(1).sortWithinPartitions("site", "dimension", F.desc("visits")).write.mode("overwrite").parquet(
        f"{root}/{layout.view_dir(layout.SESSIONS_VIEW, day)}"
    )


# The views' hits go to the Python workers in Arrow batches of a few narrow columns: 100k rows
# each (~5 MB) instead of 10k, so per-batch work is paid a tenth as often, and without a byte
# bound, which made Spark size the batch after every row (Int.MaxValue is its "no byte bound").
_VIEW_BATCHES = {
    "spark.sql.execution.arrow.maxRecordsPerBatch": "100000",
    "spark.sql.execution.arrow.maxBytesPerBatch": str(2**31 - 1),
}


# Partitions of the views' per-visitor work: one for a quiet day; else a multiple of the cores,
# each partition at most this many events (a partition left over for one core idles the others),
# so that sorting one by visitor stays in memory. (At 1.6M events per partition, a 10M-event
# day, a per-visitor aggregation spilled 0.9 GB.)
_EVENTS_PER_PARTITION = 500_000


def _view_partitions(spark: SparkSession, events: int) -> int:
    if events < 100_000:
        return 1
    cores = spark.sparkContext.defaultParallelism
    return cores * -(-events // (cores * _EVENTS_PER_PARTITION))


class _Checkpoints:
    """The run's local checkpoints, all dropped when the run ends. Kept, they would stay in
    executor memory and disk until the JVM's garbage collector got to them (a long-running
    ``pixel up``)."""

    def __init__(self, spark: SparkSession) -> None:
        self._jsc = spark.sparkContext._jsc
        self._taken: list[set[int]] = []  # per checkpoint, the RDDs holding it

    def take(self, df: DataFrame, level: StorageLevel = _AS_OBJECTS) -> DataFrame:
        before = self._rdd_ids()
        checkpoint = df.localCheckpoint(eager=True, storageLevel=level)
        self._taken.append(self._rdd_ids() - before)
        return checkpoint

    def drop(self) -> None:
        """Drop every checkpoint taken."""
        held = self._jsc.getPersistentRDDs()
        for rdd_id in set().union(*self._taken) & set(held.keySet()):
            held[rdd_id].unpersist(False)
        self._taken = []

    def _rdd_ids(self) -> set[int]:
        return set(self._jsc.getPersistentRDDs().keySet())


@contextlib.contextmanager
def _session_conf(spark: SparkSession, conf: dict[str, str]) -> Iterator[None]:
    """Session settings for the block (the actions in it), then back as they were."""
    before = {key: spark.conf.get(key, None) for key in conf}
    for key, value in conf.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            spark.conf.unset(key) if value is None else spark.conf.set(key, value)


def _even_raw_splits(spark: SparkSession) -> contextlib.AbstractContextManager[None]:
    """Raw files packed into about 4 equal partitions per core, each at most 16 MB of gzip
    (~300k events). Every later step over the enriched rows keeps this partitioning. Spark's
    defaults charge each file 4 MB to open, which packed a 1M-event day (116 files of ~0.5 MB)
    into 3 full partitions and a 45% one: on 2 cores the second round left one core idle half the
    time. The cap keeps a big day's partitions small enough to sort in memory (10M events: the
    clean Parquet's sort spent 7 s in GC with ~1.1M events per partition)."""
    return _session_conf(
        spark,
        {
            "spark.sql.files.openCostInBytes": str(64 * 1024),
            "spark.sql.files.minPartitionNum": str(4 * spark.sparkContext.defaultParallelism),
            "spark.sql.files.maxPartitionBytes": str(16 * 1024 * 1024),
        },
    )
