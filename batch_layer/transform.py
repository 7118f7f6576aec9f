"""The batch job's per-partition work, as pure functions (no Spark, no I/O).

Spark reads the raw files (``binaryFile``: file://, hdfs://, whatever Hadoop reaches) and hands
each one, as stored, to ``enrich_files`` through ``mapInPandas``. Here it is decompressed, split
into lines and parsed by Arrow's JSON reader with the explicit raw schema, and enriched by the
events library (the same rules the speed layer runs): clean columns, or for a line that can't be
used, a typed bad reason and the line itself. Tests call these functions directly.

What goes back to Spark is one narrow row per line (LINE_SCHEMA: where the line is, the keys
deduplication orders by, what the views and the day's counts read, a bad line's reason and text)
and, once per chunk of lines, the chunk's whole clean events as one Arrow IPC value. Spark never
turns the other ~20 clean columns into rows: the clean Parquet is written from those values by
the Python workers (batch_layer/clean_parts.py), which is where most of the job's time went
(converting 35 columns per line into Spark rows, then parquet-mr encoding them).

Why here and not in Spark: Spark's text reader decompressed and split the lines in the JVM and
then shipped every line to Python as its own value, which Python turned into bytes objects and
joined again for the JSON reader. Shipping the compressed file instead moves ~8x fewer bytes and
leaves no per-line Python object on the fast path (docs/benchmarks.md).

A chunk of lines Arrow's reader refuses (any line that isn't a plain raw event of the schema's
types: malformed JSON, a field of another type, a duplicated key, invalid UTF-8, a blank line)
is parsed line by line with the lander's own check, which names each line's fault exactly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.json as pj
from isal import isal_zlib

from core.lake import layout
from events.aggregate import DIMENSION_COLUMNS
from events.badrows import MAX_BAD_PAYLOAD_BYTES, BadReason
from events.enrich import CLEAN_COLUMNS, CLEAN_SCHEMA, enrich_table
from events.raw import RAW_SCHEMA, check_raw_message, check_raw_table
from events.rules import NO_RULES, Rules
from events.schema import arrow_schema

# What mapInPandas returns: the clean event, why it is bad (if it is) and what to keep of it.
BAD_COLUMNS: list[tuple[str, str]] = [
    ("bad_reason", "string"),
    ("bad_detail", "string"),
    ("payload", "string"),  # the raw line (bad rows only)
    ("file", "string"),  # the raw file the row came from
    ("_file_day", "date"),  # ... the date and hour of its folder (raw/date=D/hour=H/)
    ("_file_hour", "long"),
]
OUTPUT_SCHEMA: list[tuple[str, str]] = CLEAN_SCHEMA + BAD_COLUMNS
OUTPUT_COLUMNS = [name for name, _ in OUTPUT_SCHEMA]
OUTPUT_ARROW = arrow_schema(OUTPUT_SCHEMA)

# The clean columns Spark reads per line: deduplication's keys and order, the day's counts, the
# views' visitor and dimensions.
LINE_CLEAN_COLUMNS = [
    name
    for name in CLEAN_COLUMNS
    if name in ("event_id", "dedupe_key", "ts", "site", "visitor_id", "is_bot", *DIMENSION_COLUMNS)
]
# What enrich_files returns: one row per line of a raw file.
LINE_SCHEMA: list[tuple[str, str]] = [
    ("file", "string"),  # the raw file
    ("line", "long"),  # the line's number in it, from 0 (with ``file``: which line this is)
    *((name, typ) for name, typ in CLEAN_SCHEMA if name in LINE_CLEAN_COLUMNS),
    *((name, typ) for name, typ in BAD_COLUMNS if name != "file"),
    ("chunk", "binary"),  # on a chunk's first line: the chunk's events (chunk_value); else null
]
LINE_COLUMNS = [name for name, _ in LINE_SCHEMA]
LINE_ARROW = arrow_schema(LINE_SCHEMA)
CLEAN_ARROW = arrow_schema(CLEAN_SCHEMA)
# A chunk's events: every line's clean columns, and whether the line is a bad row (then they are
# empty or null).
CHUNK_ARROW = arrow_schema(CLEAN_SCHEMA + [("bad", "boolean")])
# Chunk values are compressed: a day's chunks stay in Spark's memory until the clean Parquet is
# written (zstd: ~115 bytes per event, lz4 ~200, plain ~490).
_CHUNK_IPC = ipc.IpcWriteOptions(compression="zstd")

RAW_ARROW_SCHEMA = arrow_schema(RAW_SCHEMA)
_PARSE = pj.ParseOptions(explicit_schema=RAW_ARROW_SCHEMA, unexpected_field_behavior="ignore")
# Lines parsed and enriched at a time: bounds the Arrow batches handed back to Spark (~25 MB).
CHUNK_LINES = 32_768
_GZIP_MAGIC = b"\x1f\x8b"
_READ_STEP = 1 << 20  # gzip input fed this much at a time: a fault keeps what came before it
_NEWLINE, _OPEN_BRACE = ord("\n"), ord("{")


def enrich_files(batches: Iterator[pd.DataFrame], now_ms: int, rules: Rules = NO_RULES) -> Iterator[pd.DataFrame]:
    """The mapInPandas function (bind now_ms and the operator's rules with functools.partial:
    they travel to the workers with it): rows of (path, content),
    one per raw file -> LINE_SCHEMA rows, one per line of each file, in file order (a file that
    can't be read whole has one more: its ``unreadable_file`` bad row, after its lines).

    The rows go out as pandas columns backed by the Arrow arrays themselves (ArrowDtype), which
    Spark takes over without converting: no per-row Python object on the way."""
    for files in batches:
        for path, content in zip(files["path"], files["content"]):
            text, fault = read_raw_file(bytes(content))
            first = 0
            for table in enrich_text(text, path, now_ms, rules):
                yield _as_frame(line_rows(table, first))
                first += table.num_rows
            if fault is not None:
                yield _as_frame(line_rows(unreadable_row(path, fault), first))


def line_rows(table: pa.Table, first_line: int) -> pa.Table:
    """A chunk of a file's lines as enrich_text gives it (OUTPUT_SCHEMA), its first line being
    ``first_line`` -> LINE_SCHEMA rows, the chunk's clean events on the first one."""
    n = table.num_rows
    columns = {name: table.column(name) for name in LINE_COLUMNS if name in table.column_names}
    columns["line"] = pa.array(np.arange(first_line, first_line + n, dtype=np.int64))
    events = table.select(CLEAN_COLUMNS).append_column("bad", pc.is_valid(table.column("bad_reason")))
    chunk = [pa.array([chunk_value(events)], pa.binary())] if n else []
    columns["chunk"] = pa.concat_arrays([*chunk, pa.nulls(max(n - 1, 0), pa.binary())])
    return pa.table([columns[name] for name in LINE_COLUMNS], schema=LINE_ARROW)


def chunk_value(events: pa.Table) -> bytes:
    """A chunk's events (CHUNK_ARROW) as one value: an Arrow IPC stream (read back by chunk_table)."""
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, CHUNK_ARROW, options=_CHUNK_IPC) as writer:
        writer.write_table(events)
    return sink.getvalue().to_pybytes()


def chunk_table(value: bytes) -> pa.Table:
    """The events of a chunk_value (CHUNK_ARROW), one row per line."""
    return ipc.open_stream(value).read_all()


def _as_frame(table: pa.Table) -> pd.DataFrame:
    return pd.DataFrame(
        {name: pd.arrays.ArrowExtensionArray(column) for name, column in zip(table.column_names, table.columns)}
    )


def read_raw_file(content: bytes) -> tuple[bytes, str | None]:
    """A raw file's lines as bytes (gunzipped if it is gzip; any number of members), and what
    went wrong if it can't be read whole (corrupt or truncated): then what came before is kept."""
    if not content.startswith(_GZIP_MAGIC):
        return content, None
    parts, rest = [], content
    try:
        while rest:
            member = isal_zlib.decompressobj(wbits=31)  # ISA-L: ~3.5x zlib's speed, same output
            for start in range(0, len(rest), _READ_STEP):
                parts.append(member.decompress(rest[start : start + _READ_STEP]))
                if member.eof:
                    break
            if not member.eof:
                return b"".join(parts), "gzip data ends early (truncated file)"
            rest = member.unused_data
    except isal_zlib.error as error:
        return b"".join(parts), f"corrupt gzip data: {error}"
    return b"".join(parts), None


def unreadable_row(path: str, fault: str) -> pa.Table:
    """The bad row of a raw file that could not be read whole (its readable lines have their own)."""
    row = {name: None for name in OUTPUT_COLUMNS}
    row.update(bad_reason=BadReason.UNREADABLE_FILE.value, bad_detail=fault, payload="")
    row.update(zip(("file", "_file_day", "_file_hour"), (c[0].as_py() for c in _file_columns(path, 1))))
    return pa.Table.from_pylist([row], schema=OUTPUT_ARROW)


def _file_columns(path: str, rows: int) -> list[pa.Array]:
    """file, _file_day, _file_hour of ``rows`` rows of one file (worked out once per file: the
    as a regular expression per row in Spark it costs ~1 s per 1M rows)."""
    day, hour = place if (place := layout.hour_place(path)) else (None, None)
    return [
        pa.repeat(pa.scalar(path, pa.string()), rows),
        pa.repeat(pa.scalar(day and dt.date.fromisoformat(day), pa.date32()), rows),
        pa.repeat(pa.scalar(hour, pa.int64()), rows),
    ]


def enrich_text(text: bytes, file: str, now_ms: int, rules: Rules = NO_RULES) -> Iterator[pa.Table]:
    """A raw file's text (newline-separated lines) -> OUTPUT_SCHEMA tables, CHUNK_LINES lines
    at a time, one row per line (a blank line is a bad row; the final newline ends a line)."""
    data = np.frombuffer(text, np.uint8)
    ends = np.flatnonzero(data == _NEWLINE)
    if len(text) and text[-1] != _NEWLINE:
        ends = np.append(ends, len(text))
    starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)
    for first in range(0, len(ends), CHUNK_LINES):
        yield _enrich_chunk(
            _Lines(text, data, starts[first : first + CHUNK_LINES], ends[first : first + CHUNK_LINES]),
            file,
            now_ms,
            rules,
        )


def _enrich_chunk(lines: _Lines, file: str, now_ms: int, rules: Rules) -> pa.Table:
    raw, reason, detail = parse_lines(lines, now_ms)
    out = enrich_table(raw, rules)
    bad_reason, bad_detail = out.column("bad_reason"), out.column("bad_detail")
    structural = np.not_equal(reason, None)
    if structural.any():  # the lander's verdict comes first, as in the stream
        bad_reason = pc.if_else(structural, pa.array(reason, pa.string()), bad_reason)
        bad_detail = pc.if_else(structural, pa.array(detail, pa.string()), bad_detail)
    payload = np.full(len(lines), None, dtype=object)
    bad = pc.is_valid(bad_reason).to_numpy(zero_copy_only=False)
    payload[bad] = [lines[i][:MAX_BAD_PAYLOAD_BYTES].decode("utf-8", "replace") for i in np.flatnonzero(bad)]
    columns = [
        *out.columns[: len(CLEAN_SCHEMA)],
        bad_reason,
        bad_detail,
        pa.array(payload, pa.string()),
        *_file_columns(file, len(lines)),
    ]
    return pa.Table.from_arrays(
        [c if isinstance(c, pa.ChunkedArray) else pa.chunked_array([c]) for c in columns], schema=OUTPUT_ARROW
    )


class _Lines:
    """Lines of a file's text by (start, end) offsets, without copying until one is asked for."""

    def __init__(self, text: bytes, data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> None:
        self.buffer, self.data, self.starts, self.ends = pa.py_buffer(text), data, starts, ends

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> bytes:
        return self.buffer[int(self.starts[i]) : int(self.ends[i])].to_pybytes()

    def span(self) -> pa.Buffer:
        """All the lines (at least one), with the newlines between them (one slice, no copy)."""
        return self.buffer[int(self.starts[0]) : int(self.ends[-1])]


def parse_lines(lines: _Lines, now_ms: int) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """Lines -> (RAW_SCHEMA table, reason, detail): per line, the lander's verdict (None where the
    line is a valid raw event; a refused line's fields are null)."""
    table = _parse_chunk(lines)
    if table is None:
        table, reason, detail = _parse_each([lines[i] for i in range(len(lines))], now_ms)
    else:
        reason = np.full(len(lines), None, dtype=object)
        detail = np.full(len(lines), None, dtype=object)
    checked_reason, checked_detail = check_raw_table(table, now_ms)
    unchecked = np.equal(reason, None)
    reason[unchecked], detail[unchecked] = checked_reason[unchecked], checked_detail[unchecked]
    return table, reason, detail


def _parse_chunk(lines: _Lines) -> pa.Table | None:
    """The chunk's lines with Arrow's JSON reader, or None if it refuses any line."""
    if not len(lines):
        return RAW_ARROW_SCHEMA.empty_table()
    # Each line must open an object, so that it is at least one row of the reader's output and
    # the count below can tell a line of two objects. (A blank line is no row; a top-level
    # `null` crashed pyarrow 20's reader.)
    if not (lines.ends > lines.starts).all() or not (lines.data[lines.starts] == _OPEN_BRACE).all():
        return None
    span = lines.span()
    try:
        table = pj.read_json(
            pa.BufferReader(span),
            parse_options=_PARSE,
            read_options=pj.ReadOptions(use_threads=False, block_size=span.size + 1),
        )
        table.validate(full=True)  # the reader doesn't check that strings are UTF-8
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    if table.num_rows != len(lines):  # a line held more than one JSON value
        return None
    return table.combine_chunks()


def _parse_each(values: list[bytes], now_ms: int) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """Line by line with the lander's check (check_raw_message)."""
    reason = np.full(len(values), None, dtype=object)
    detail = np.full(len(values), None, dtype=object)
    rows = []
    for i, value in enumerate(values):
        event, why, what = check_raw_message(value, now_ms)
        if event is None:
            reason[i], detail[i] = why.value, what
            rows.append({})
        else:  # valid where it matters; an optional field of another type is read as the engines do
            rows.append({name: _as_schema_type(event.get(name), typ) for name, typ in RAW_SCHEMA})
    return pa.Table.from_pylist(rows, schema=RAW_ARROW_SCHEMA), reason, detail


def _as_schema_type(value, typ: str):
    """A parsed JSON value as a schema-aware reader gives it (non-string values of string fields
    as their JSON text, as Spark's and Flink's readers do)."""
    if value is None:
        return None
    if typ == "string":
        return value if isinstance(value, str) else orjson.dumps(value).decode()
    if typ == "boolean":
        return bool(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None  # long: v, ts
