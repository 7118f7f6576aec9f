"""The clean Parquet of a day, written by the Python workers from the chunks' events.

Spark keeps one narrow row per raw line (batch_layer/transform.py, LINE_SCHEMA), and each chunk
of lines carries its events whole, as one Arrow value on its first line. The clean data of day D
is every good (not bad), non-bot event of day D (by its own timestamp) in those chunks, but for
the lines Spark's deduplication names as later copies of a key. So each partition's writer gets
its chunks and only the exceptions Spark found: the later copies (~1% of a day) and the lines
that are too late, whose clean events become bad-row payloads.

- ``clean_part`` (pure): those rows -> the partition's clean events, sorted by site and time
  (readers prune row groups and pages by site), and the too-late events as JSON.
- ``write_clean_parts`` (the mapInArrow function): writes the part through the Storage
  interface (file:// or hdfs://) into the run's staging folder and reports it (path, events)
  and the too-late payloads. The job publishes the folder only if the parts hold exactly the
  day's clean count from its own summary: the writer and Spark's flags can't disagree silently.

Why not Spark's Parquet writer: turning ~20 more columns per line into Spark rows and encoding
them with parquet-mr took ~3.3 s per 1M events on this box; Arrow writes the same file from the
chunks in ~0.55 s of each core (docs/benchmarks.md).

A part is named after its Spark partition: a retried or speculative task writes the same file
again (atomically), never a second copy.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from batch_layer.lineage import PARQUET_KEY
from batch_layer.transform import CLEAN_ARROW, chunk_table
from core.lake.storage import open_storage
from events.enrich import CLEAN_COLUMNS
from events.schema import arrow_schema

# What clean_part reads: a line, its chunk's events (on the chunk's first line only), and
# Spark's two exceptions: a later copy of a key (not the event), a too-late event (a bad row).
PART_INPUT_COLUMNS = ["file", "line", "chunk", "later_copy", "too_late"]
# What write_clean_parts reports: a row per part written, and a row per too-late line.
PART_OUTPUT_SCHEMA: list[tuple[str, str]] = [
    ("part", "string"),  # a part written (its path in the store) ...
    ("events", "long"),  # ... and how many events it holds
    ("file", "string"),  # a too-late line: its file and line ...
    ("line", "long"),
    ("payload", "string"),  # ... and its clean event as JSON
]
PART_OUTPUT_ARROW = arrow_schema(PART_OUTPUT_SCHEMA)
_DAY_MS = 86_400_000


class MissingChunk(RuntimeError):
    """A line's chunk is not among the rows: the rows of a file were split between partitions."""


def clean_part(batches: Iterable[pa.RecordBatch], day: dt.date) -> tuple[pa.Table, pa.Table]:
    """Rows of PART_INPUT_COLUMNS, in any order, holding every chunk of each file they name ->
    (the clean events of ``day`` in those chunks, sorted by site and ts; the too-late lines as
    (file, line, payload), in file and line order)."""
    chunks: dict[str, list[tuple[int, bytes]]] = defaultdict(list)  # file -> (first line, value)
    flagged: dict[str, list[pa.Table]] = defaultdict(list)  # file -> its exceptions
    for batch in batches:
        table = pa.Table.from_batches([batch])
        with_chunk = table.filter(pc.is_valid(table.column("chunk")))
        for file, line, value in zip(*(with_chunk.column(c).to_pylist() for c in ("file", "line", "chunk"))):
            chunks[file].append((line, value))
        flags = {name: pc.fill_null(table.column(name), False) for name in ("later_copy", "too_late")}
        exceptions = pa.table({"file": table.column("file"), "line": table.column("line"), **flags}).filter(
            pc.or_(flags["later_copy"], flags["too_late"])
        )
        for file in exceptions.column("file").unique().to_pylist():
            flagged[file].append(exceptions.filter(pc.equal(exceptions.column("file"), file)))
    first_ms = (day - dt.date(1970, 1, 1)).days * _DAY_MS
    tables, kept, late, lines = [], [], [], 0
    for file in sorted(chunks.keys() | flagged.keys()):
        exceptions = pa.concat_tables(flagged[file]) if flagged[file] else None
        wanted = exceptions.column("line").to_numpy() if exceptions else np.zeros(0, np.int64)
        events = _file_events(file, chunks[file], int(wanted.max(initial=-1)))
        keep = np.array(_of_day(events, first_ms).to_numpy(zero_copy_only=False))
        if exceptions:
            keep[exceptions.filter(exceptions.column("later_copy")).column("line").to_numpy()] = False
            too_late = exceptions.filter(exceptions.column("too_late")).sort_by("line")
            if too_late.num_rows:
                late.append((file, too_late.column("line"), events.take(too_late.column("line"))))
        tables.append(events)
        kept.append(np.flatnonzero(keep) + lines)
        lines += events.num_rows
    if not tables:
        return CLEAN_ARROW.empty_table(), _too_late_rows(late)
    events = pa.concat_tables(tables).select(CLEAN_COLUMNS)
    return events.take(_by_site_and_time(events, np.concatenate(kept))).cast(CLEAN_ARROW), _too_late_rows(late)


def _by_site_and_time(events: pa.Table, rows: np.ndarray) -> np.ndarray:
    """These rows of ``events``, ordered by site, then ts (stable). Sorting on integers: each
    site's rank among the sites (few), and ts; sorting the site strings took most of the part's
    assembly time."""
    sites = events.column("site").combine_chunks().dictionary_encode()
    rank = np.argsort(np.argsort(sites.dictionary.to_numpy(zero_copy_only=False), kind="stable"))
    site_rank = rank[pc.fill_null(sites.indices, 0).to_numpy()[rows]]  # (null: a bad line's, never in rows)
    ts = events.column("ts").to_numpy()[rows]
    return rows[np.lexsort((ts, site_rank))]


def _of_day(events: pa.Table, first_ms: int) -> pa.Array:
    """Per line: a good, non-bot event whose own timestamp falls on the day starting at first_ms."""
    ts = pc.fill_null(events.column("ts"), -1)
    return pc.and_(
        pc.and_(pc.invert(events.column("bad")), pc.invert(pc.fill_null(events.column("is_bot"), True))),
        pc.and_(pc.greater_equal(ts, first_ms), pc.less(ts, first_ms + _DAY_MS)),
    ).combine_chunks()


def _file_events(file: str, chunks: list[tuple[int, bytes]], last_line: int) -> pa.Table:
    """A file's events (one row per line: row i = line i) from its chunks, which follow on from
    line 0 and reach at least ``last_line``."""
    tables, lines = [], 0
    for first, value in sorted(chunks):
        if first != lines:
            break
        tables.append(chunk_table(value))
        lines += tables[-1].num_rows
    if lines <= last_line or not tables:
        raise MissingChunk(
            f"line {lines} of {file} has no chunk among this partition's rows"
            + (f" (line {last_line} is flagged)" if last_line >= 0 else "")
        )
    return pa.concat_tables(tables)


def _too_late_rows(late: list[tuple[str, pa.ChunkedArray, pa.Table]]) -> pa.Table:
    """(file, lines, their events) -> (file, line, payload): each event's clean columns as JSON,
    in schema order, nulls left out (as Spark's to_json wrote them)."""
    files, lines, payloads = [], [], []
    for file, at, events in late:
        files += [file] * len(at)
        lines += at.to_pylist()
        payloads += [
            orjson.dumps({k: v for k, v in event.items() if v is not None}).decode()
            for event in events.select(CLEAN_COLUMNS).to_pylist()
        ]
    return pa.table(
        {
            "file": pa.array(files, pa.string()),
            "line": pa.array(lines, pa.int64()),
            "payload": pa.array(payloads, pa.string()),
        }
    )


def parquet_bytes(table: pa.Table, lineage: str = "") -> bytes:
    """A clean part as a Parquet file: zstd, statistics and a page index, so that readers skip
    pages by site and time as they did in Spark's files; ``lineage`` (JSON, batch_layer.lineage)
    in its key-value metadata."""
    if lineage:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), PARQUET_KEY: lineage.encode()})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", write_page_index=True)
    return sink.getvalue().to_pybytes()


def write_clean_parts(
    batches: Iterator[pa.RecordBatch], day: dt.date, storage_url: str, hdfs_user: str, folder: str, lineage: str = ""
) -> Iterator[pa.RecordBatch]:
    """The mapInArrow function (bind the rest with functools.partial): writes this partition's
    clean events as ``folder/part-NNNNN.parquet`` (N: the Spark partition; nothing for a
    partition without clean events) and reports it and the too-late lines (PART_OUTPUT_SCHEMA)."""
    from pyspark import TaskContext

    part, too_late = clean_part(batches, day)
    written = []
    if part.num_rows:
        name = f"{folder}/part-{TaskContext.get().partitionId():05d}.parquet"
        open_storage(storage_url, hdfs_user).write_atomic(name, parquet_bytes(part, lineage))
        written = [{"part": name, "events": part.num_rows}]
    yield from pa.Table.from_pylist(written, schema=PART_OUTPUT_ARROW).to_batches()
    yield from pa.Table.from_arrays(
        [pa.nulls(too_late.num_rows, pa.string()), pa.nulls(too_late.num_rows, pa.int64()), *too_late.columns],
        schema=PART_OUTPUT_ARROW,
    ).to_batches()
