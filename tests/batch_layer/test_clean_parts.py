"""The clean Parquet's parts, assembled by the Python workers from the chunks' clean events and the
lines' verdicts (pure functions; the job tests run them inside Spark)."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import random

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batch_layer import transform
from batch_layer.clean_parts import PART_INPUT_COLUMNS, MissingChunk, clean_part, parquet_bytes
from batch_layer.transform import CLEAN_ARROW, enrich_files
from events.enrich import CLEAN_COLUMNS
from tests.batch_layer.rawdata import GOOGLEBOT, event, ms

pytestmark = pytest.mark.fast

D = dt.date(2026, 11, 20)
NOW = ms(D + dt.timedelta(days=2), 0)
FILES = [f"file:///data/raw/date=2026-11-20/hour=1{i}/0-0-9.jsonl.gz" for i in range(3)]


def line_rows(monkeypatch, chunk_lines: int = 3) -> pa.Table:
    """Two raw files of 8 and 5 lines, as enrich_files hands them to Spark, in chunks of
    ``chunk_lines`` lines. Line 2 of each is not JSON, line 3 a bot, line 4 an event of D-1. A
    third file is cut short: its whole lines, the cut one, and its unreadable_file row."""
    monkeypatch.setattr(transform, "CHUNK_LINES", chunk_lines)
    sites = ["b.example", "a.example"]
    contents = []
    for f, n in enumerate((8, 5)):
        lines = [
            orjson.dumps(event(f"f{f}-{i}", ms(D, 10 + f, 59 - i), sites[i % 2], f"/p{i}", visitor=f"v{i}"))
            for i in range(n)
        ]
        lines[2] = b"not json"
        lines[3] = orjson.dumps(event(f"f{f}-3", ms(D, 10), "a.example", ua=GOOGLEBOT))
        lines[4] = orjson.dumps(event(f"f{f}-4", ms(D, 0) - 1, "a.example"))
        contents.append(gzip.compress(b"\n".join(lines) + b"\n"))
    whole = gzip.compress(
        b"".join(
            orjson.dumps(event(f"f2-{i}", ms(D, 12, i % 60), "c.example", f"/{i * 7919}")) + b"\n" for i in range(300)
        )
    )
    contents.append(whole[:-40])
    frames = enrich_files(iter([pd.DataFrame({"path": FILES, "content": contents})]), NOW)
    return pa.concat_tables(pa.Table.from_pandas(frame, preserve_index=False) for frame in frames)


def with_verdicts(rows: pa.Table, later_copy: set[tuple[int, int]], too_late: set[tuple[int, int]]) -> pa.Table:
    """The rows clean_part reads (every chunk, and only the flagged lines, as the job sends them),
    flagged a later copy / too late where (file number, line) says."""
    where = [
        (FILES.index(f), line) for f, line in zip(rows.column("file").to_pylist(), rows.column("line").to_pylist())
    ]
    table = (
        rows.select(["file", "line", "chunk"])
        .append_column("later_copy", pa.array([w in later_copy for w in where]))
        .append_column("too_late", pa.array([w in too_late for w in where]))
    )
    return table.filter(
        pa.array(
            [w in later_copy or w in too_late or c is not None for w, c in zip(where, rows.column("chunk").to_pylist())]
        )
    )


def events_of(rows: pa.Table) -> dict[tuple[int, int], dict]:
    """(file number, line) -> the clean event of that line, from the chunks."""
    out = {}
    for f, line, value in zip(*(rows.column(c).to_pylist() for c in ("file", "line", "chunk"))):
        if value is not None:
            for i, clean in enumerate(transform.chunk_table(value).to_pylist()):
                out[(FILES.index(f), line + i)] = clean
    return out


def shuffled_batches(table: pa.Table, seed: int) -> list[pa.RecordBatch]:
    order = list(range(table.num_rows))
    random.Random(seed).shuffle(order)
    return table.take(order).to_batches(max_chunksize=4)


def test_the_days_good_events_but_later_copies_sorted_by_site_and_time_from_chunks_in_any_order(monkeypatch):
    rows = line_rows(monkeypatch)
    chunks = [FILES.index(f) for f, c in zip(rows.column("file").to_pylist(), rows.column("chunk").to_pylist()) if c]
    assert (chunks.count(0), chunks.count(1)) == (3, 2)  # 8 lines in chunks of 3, 5 lines
    events = events_of(rows)
    later_copy, too_late = {(0, 1), (0, 6), (1, 0)}, {(0, 5), (1, 1)}
    table = with_verdicts(rows, later_copy, too_late)
    assert table.column_names == PART_INPUT_COLUMNS
    # Not clean: not JSON (2), a bot (3), of D-1 (4), a later copy; a too-late line is of another
    # day in the job (here: flagged, and kept if its own day is D, as the job never flags one).
    clean = [
        (f, line)
        for f, n in enumerate((8, 5))
        for line in range(n)
        if line not in (2, 3, 4) and (f, line) not in later_copy
    ]
    cut = max(line for f, line in events if f == 2) - 1  # the cut line; after it, the file's own row
    assert 100 < cut < 300 and [events[(2, line)]["site"] for line in (cut - 1, cut, cut + 1)] == [
        "c.example",
        "",
        None,
    ]
    clean += [(2, line) for line in range(cut)]
    for seed in range(5):  # the rows of a partition, in any order, cut into batches of any size
        part, late = clean_part(shuffled_batches(table, seed), D)
        assert part.schema == CLEAN_ARROW
        assert part.to_pylist() == sorted(
            ({k: events[w][k] for k in CLEAN_COLUMNS} for w in clean), key=lambda e: (e["site"], e["ts"])
        )
        assert [
            (FILES.index(f), line) for f, line in zip(late.column("file").to_pylist(), late.column("line").to_pylist())
        ] == [(0, 5), (1, 1)]
        # A too-late event's payload is its clean event, as JSON (what Spark's to_json wrote).
        assert [orjson.loads(p) for p in late.column("payload").to_pylist()] == [
            {k: events[w][k] for k in CLEAN_COLUMNS} for w in [(0, 5), (1, 1)]
        ]
        assert list(orjson.loads(late.column("payload")[0].as_py())) == CLEAN_COLUMNS
    # The other days' events of the same chunks make their own days' parts.
    assert [e["event_id"] for e in clean_part(table.to_batches(), D - dt.timedelta(days=1))[0].to_pylist()] == [
        "f0-4",
        "f1-4",
    ]


def test_a_line_whose_chunk_is_elsewhere_fails_loudly(monkeypatch):
    """A line wanted without its chunk would be an event silently lost: the task fails instead."""
    rows = line_rows(monkeypatch)
    table = with_verdicts(rows, later_copy={(0, 7)}, too_late=set())
    keep = [
        not (f == FILES[0] and line == 6)
        for f, line in zip(table.column("file").to_pylist(), table.column("line").to_pylist())
    ]
    with pytest.raises(MissingChunk, match="line 6 of .*hour=10"):
        clean_part(table.filter(pa.array(keep)).to_batches(), D)
    # The chunks before the wanted line's are needed too (its row is found by counting lines).
    without_first = [
        not (f == FILES[0] and line == 0)
        for f, line in zip(table.column("file").to_pylist(), table.column("line").to_pylist())
    ]
    with pytest.raises(MissingChunk, match="line 0 of"):
        clean_part(table.filter(pa.array(without_first)).to_batches(), D)


def test_a_day_without_events_in_the_chunks_is_an_empty_part_with_the_clean_schema(monkeypatch):
    rows = with_verdicts(line_rows(monkeypatch), set(), set())
    part, late = clean_part(rows.to_batches(), D + dt.timedelta(days=3))
    assert part.num_rows == late.num_rows == 0 and part.schema == CLEAN_ARROW
    assert clean_part([], D)[0].schema == CLEAN_ARROW


def test_a_part_reads_back_as_written():
    rows = [
        {**{name: "" for name in CLEAN_COLUMNS}, "ts": 5, "is_bot": False, "dnt": True, "site": "a.example"},
        {**{name: "" for name in CLEAN_COLUMNS}, "ts": 6, "is_bot": False, "dnt": False, "props": [("plan", "pro")]},
    ]
    rows[0]["props"] = []
    table = pa.Table.from_pylist(rows, schema=CLEAN_ARROW)
    back = pq.read_table(io.BytesIO(parquet_bytes(table)))
    assert back.schema == CLEAN_ARROW and back.to_pylist() == rows
    assert pq.read_table(io.BytesIO(parquet_bytes(CLEAN_ARROW.empty_table()))).schema == CLEAN_ARROW
