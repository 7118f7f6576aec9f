"""The batch job's per-file work: the functions mapInPandas runs (fast), and, on a real
SparkSession, the promise that batch and stream reach the same verdict on the same raw line."""

from __future__ import annotations

import datetime as dt
import gzip
import random

import orjson
import pandas as pd
import pyarrow as pa
import pytest

from batch_layer import transform
from batch_layer.job import raw_inputs
from batch_layer.transform import (
    LINE_CLEAN_COLUMNS,
    OUTPUT_COLUMNS,
    chunk_table,
    enrich_files,
    enrich_text,
    read_raw_file,
)
from core.lake.layout import hour_place
from core.lake.storage import FileStorage
from events.enrich import CLEAN_COLUMNS, enrich_frame
from events.raw import RAW_COLUMNS, check_raw_message
from tests.batch_layer.rawdata import GOOGLEBOT, RawDataset, event, ms

D = dt.date(2026, 11, 20)
NOW = ms(D + dt.timedelta(days=2), 0)
FILE_PATH = "file:///data/raw/date=2026-11-20/hour=10/0-0-9.jsonl.gz"


def text_of(lines: list[dict | str | bytes]) -> bytes:
    """Raw lines as a raw file holds them (one per line, each ended by a newline)."""
    return b"".join(
        (orjson.dumps(line) if isinstance(line, dict) else line.encode() if isinstance(line, str) else line) + b"\n"
        for line in lines
    )


def enrich_lines(lines: list[dict | str | bytes]) -> pa.Table:
    return pa.concat_tables(enrich_text(text_of(lines), FILE_PATH, NOW))


def plain(table: pa.Table) -> list[dict]:
    """Output rows as Python values (None where null)."""
    return table.to_pylist()


@pytest.mark.fast
def test_good_rows_are_enriched_and_bad_ones_keep_their_line_and_file():
    bad_lines = [
        '{"v":1,"event_id":"x","ts":"soon","site":"a.example"}',
        "not json at all",
        {**event("e3", ms(D, 10), "a.example"), "v": 7},
        {**event("e4", ms(D, 10), "a.example"), "url": "ftp://nope"},
        b'{"v":1,"event_id":"e5","ts":1,"site":"\xff"}',
        "",
    ]
    out = enrich_lines(
        [
            event("e1", ms(D, 10), "a.example", "/pricing?utm_source=news"),
            event("e2", ms(D, 10), "a.example", ua=GOOGLEBOT),
            *bad_lines,
        ]
    )
    rows = plain(out)
    assert out.column_names == OUTPUT_COLUMNS and len(rows) == 8
    assert [r["bad_reason"] for r in rows] == [
        None,
        None,
        "bad_field_type",
        "invalid_json",
        "unsupported_version",
        "invalid_url",
        "invalid_json",
        "invalid_json",
    ]
    assert (rows[0]["path"], rows[0]["utm_source"], rows[0]["browser"]) == ("/pricing", "news", "Chrome")
    assert rows[1]["is_bot"] and not rows[0]["is_bot"]
    assert rows[3]["payload"] == "not json at all"
    assert orjson.loads(rows[4]["payload"])["v"] == 7  # every bad row keeps its line as landed
    assert rows[6]["payload"] == '{"v":1,"event_id":"e5","ts":1,"site":"\ufffd"}'  # not UTF-8: kept, replaced
    assert rows[0]["payload"] is None and rows[1]["payload"] is None
    assert {(r["file"], r["_file_day"], r["_file_hour"]) for r in rows} == {(FILE_PATH, D, 10)}


@pytest.mark.fast
@pytest.mark.parametrize("spoilt", [["{"], ["null"], ['{"v":1} {"v":1}'], ['{"v":1} {"v":1}', ""], ["  "]])
def test_a_batch_of_plain_events_and_one_with_spoilt_lines_read_the_same(spoilt):
    """A batch the Arrow reader takes and the same events in a batch it refuses: the line-by-line
    path gives the same columns, and each spoilt line is a bad row of its own (a line of two
    objects beside a blank line must not shift the rows)."""
    events = [
        event(f"e{i}", ms(D, i), "a.example", f"/p{i}?utm_source=s", referrer="https://www.google.com/")
        for i in range(5)
    ]
    fast = enrich_lines(events)
    exact = plain(enrich_lines([*events, *spoilt]))
    assert exact[:5] == plain(fast)
    assert [r["bad_reason"] for r in exact[5:]] == [check_raw_message(s.encode(), NOW)[1].value for s in spoilt]


@pytest.mark.fast
def test_a_line_only_an_optional_field_spoilt_is_used():
    """The Arrow reader refuses the whole line when dnt is a string; the lander's check accepts it: so do we."""
    out = plain(enrich_lines([{**event("e1", ms(D, 10), "a.example", "/x"), "dnt": "yes"}]))
    assert out[0]["bad_reason"] is None and out[0]["path"] == "/x" and out[0]["dnt"]


@pytest.mark.fast
def test_chunks_read_as_one_and_the_last_line_needs_no_newline(monkeypatch):
    """A file is parsed CHUNK_LINES lines at a time: a spoilt line sends only its own chunk line
    by line, and the rows come out in file order as if read whole."""
    lines = [event(f"e{i}", ms(D, 10), "a.example", f"/p{i}") for i in range(10)]
    lines[4] = "{"
    whole = plain(enrich_lines(lines))
    monkeypatch.setattr(transform, "CHUNK_LINES", 3)
    assert len(list(enrich_text(text_of(lines), FILE_PATH, NOW))) == 4
    assert plain(enrich_lines(lines)) == whole
    assert [r["bad_reason"] for r in whole] == [None] * 4 + ["invalid_json"] + [None] * 5
    # No newline after the last line: still a line. A blank last line: a bad row of its own.
    unended = pa.concat_tables(enrich_text(text_of(lines)[:-1], FILE_PATH, NOW))
    assert plain(unended) == whole
    blank = plain(pa.concat_tables(enrich_text(text_of([*lines, ""]), FILE_PATH, NOW)))
    assert blank[:10] == whole and blank[10]["bad_reason"] == "invalid_json" and len(blank) == 11


@pytest.mark.fast
def test_raw_files_are_gunzipped_whole_or_kept_up_to_their_fault():
    text = text_of([event(f"e{i}", ms(D, 10), "a.example") for i in range(2000)])
    packed = gzip.compress(text[:5000]) + gzip.compress(text[5000:])  # two gzip members, as `cat` makes
    assert read_raw_file(packed) == (text, None)
    assert read_raw_file(text) == (text, None)  # not gzip: the file is the text
    kept, fault = read_raw_file(packed[:-100])
    assert "truncated" in fault and text.startswith(kept) and len(kept) > 5000
    corrupt = packed[:2000] + bytes(64) + packed[2064:]
    kept, fault = read_raw_file(corrupt)
    assert "corrupt" in fault and text.startswith(kept)


@pytest.mark.fast
def test_an_unreadable_file_is_a_bad_row_and_its_readable_lines_still_count():
    lines = [event(f"e{i}", ms(D, 10), "a.example", "/x") for i in range(1000)]
    packed = gzip.compress(text_of(lines))
    files = pd.DataFrame({"path": [FILE_PATH, FILE_PATH], "content": [packed, packed[: len(packed) // 2]]})
    rows = plain(
        pa.concat_tables(
            pa.Table.from_pandas(frame, preserve_index=False) for frame in enrich_files(iter([files]), NOW)
        )
    )
    whole, cut = rows[:1000], rows[1000:]
    assert all(r["bad_reason"] is None for r in whole) and [r["event_id"] for r in whole] == [
        f"e{i}" for i in range(1000)
    ]
    assert cut[-1]["bad_reason"] == "unreadable_file" and "truncated" in cut[-1]["bad_detail"]
    assert cut[-1]["file"] == FILE_PATH and cut[-1]["_file_day"] == D
    # Every line before the fault is there; the one it cut in two is a bad row of its own.
    assert [r["event_id"] for r in cut[:-2]] == [f"e{i}" for i in range(len(cut) - 2)]
    assert cut[-2]["bad_reason"] == "invalid_json" and 0 < len(cut) - 2 < 1000


@pytest.mark.fast
def test_hour_place_and_the_folders_a_day_reads(tmp_path):
    assert hour_place("hdfs://nn:9870/pixel/raw/date=2026-11-20/hour=07/3-10-20.jsonl.gz") == ("2026-11-20", 7)
    assert hour_place("/somewhere/else.gz") is None
    raw = RawDataset(tmp_path)
    for day, hour in [
        (D - dt.timedelta(days=1), 20),
        (D - dt.timedelta(days=1), 23),
        (D, 0),
        (D, 13),
        (D + dt.timedelta(days=1), 0),
        (D + dt.timedelta(days=1), 1),
        (D + dt.timedelta(days=1), 2),
    ]:
        raw.write(day, hour, [event("e", ms(day, hour), "a.example")])
    inputs = raw_inputs(FileStorage(tmp_path), D, lateness_hours=2)
    assert list(inputs) == [
        "raw/date=2026-11-19/hour=23",
        "raw/date=2026-11-20/hour=00",
        "raw/date=2026-11-20/hour=13",
        "raw/date=2026-11-21/hour=00",
        "raw/date=2026-11-21/hour=01",
    ]
    assert inputs == {folder: sum(f.stat().st_size for f in (tmp_path / folder).iterdir()) for folder in inputs}
    assert list(raw_inputs(FileStorage(tmp_path), D, lateness_hours=0)) == [
        "raw/date=2026-11-20/hour=00",
        "raw/date=2026-11-20/hour=13",
    ]


# -- batch and stream agree (real Spark) ---------------------------------------------------------

JUNK = [None, 0, 17, -1.5, True, "", "text", [1, "a"], {"k": "v"}]


def random_line(rng: random.Random, i: int) -> str:
    """A raw line with every field valid, missing, null or of another JSON type, at random."""
    good = event(
        f"e{i}",
        ms(D, rng.randrange(24)),
        rng.choice(["a.example", "b.example"]),
        rng.choice(["/", "/docs?utm_source=x&utm_medium=email", "/a/b", "/?gclid=1", "/?utm_source=fb&utm_medium=cpc"]),
        referrer=rng.choice(["", "https://www.google.com/", "https://a.example/x", "android-app://x"]),
        ua=rng.choice(["Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0", GOOGLEBOT]),
        ip_trunc=rng.choice(["198.51.100.0", "8.8.8.0", "81.2.69.0", "2a00:1450:4001::", ""]),
        w=rng.choice([390, 1280, 2560, 0]),
        props=rng.choice(["", '{"plan":"pro"}', '{"a":"1","b":"x y"}', "not json"]),
    )
    line = dict(good)
    for name in RAW_COLUMNS:
        roll = rng.random()
        if roll < 0.04:
            line.pop(name, None)
        elif roll < 0.10:
            line[name] = rng.choice(JUNK)
    if name := rng.choice([None, None, None, "url"]):
        line[name] = rng.choice(["javascript:x", "https://", "not a url", "https://ok.example/fine"])
    if rng.random() < 0.03:
        return rng.choice(["{", "[1,2]", '"s"', "null", "42"])
    return orjson.dumps(line).decode()


def stream_verdict(line: str) -> tuple[str | None, dict | None]:
    """What the lander (check_raw_message) and the speed layer (enrich_frame) decide."""
    parsed, reason, _ = check_raw_message(line.encode(), NOW)
    if parsed is None:
        return reason.value, None
    # Kafka's JSON formats (Flink's, Spark's) give a non-string JSON value of a string field as its JSON text.
    as_engine = {
        k: orjson.dumps(v).decode() if k not in ("v", "ts", "dnt") and v is not None and not isinstance(v, str) else v
        for k, v in parsed.items()
    }
    if not isinstance(as_engine.get("dnt", False), bool):
        as_engine["dnt"] = bool(as_engine["dnt"])
    row = enrich_frame(pd.DataFrame([{name: as_engine.get(name) for name in RAW_COLUMNS}])).iloc[0]
    if row["bad_reason"] is not None:
        return row["bad_reason"], None
    return None, {name: row[name] for name in CLEAN_COLUMNS}


@pytest.mark.fast
def test_each_line_alone_gets_the_streams_verdict():
    """A batch of one line: the Arrow reader's path where it takes the line, the lander's check
    where it doesn't; either way the stream's verdict and clean event."""
    rng = random.Random(20261124)
    for i in range(400):
        line = random_line(rng, i)
        row = plain(enrich_lines([line]))[0]
        reason, clean = stream_verdict(line)
        assert row["bad_reason"] == reason, (line, row["bad_detail"])
        if clean is not None:
            assert {name: row[name] for name in CLEAN_COLUMNS} == clean, line


@pytest.mark.slow
def test_batch_and_stream_reach_the_same_verdict_on_every_line(spark, tmp_path):
    """Spark reads the file, mapInPandas parses and enriches it: per line, the same bad reason or
    the same clean event as the stream path, over 400 randomly spoilt lines. The clean events
    come back from the chunk values Spark kept, as the clean Parquet's writer reads them."""
    import functools

    from batch_layer.job import LINE_STRUCT, read_files

    rng = random.Random(20261120)
    lines = [random_line(rng, i) for i in range(400)]
    path = RawDataset(tmp_path).write(D, 10, [line.encode() for line in lines])
    got = (
        read_files(spark, [f"file://{path.parent}"])
        .mapInPandas(functools.partial(enrich_files, now_ms=NOW), LINE_STRUCT)
        .toPandas()
    )
    assert len(got) == len(lines) and list(got["line"]) == list(range(len(lines)))
    chunks = got[got["chunk"].notna()]
    assert list(chunks["line"]) == list(range(0, len(lines), transform.CHUNK_LINES))
    events = plain(pa.concat_tables(chunk_table(bytes(value)) for value in chunks["chunk"]))
    verdicts = [stream_verdict(line) for line in lines]
    assert {r for r, _ in verdicts} >= {
        None,
        "invalid_json",
        "not_an_object",
        "missing_field",
        "bad_field_type",
        "missing_site",
        "invalid_url",
        "unsupported_version",
    }
    # Spark returns rows in file order within the one file.
    for i, (line, (reason, clean)) in enumerate(zip(lines, verdicts)):
        row = got.iloc[i]
        assert row["bad_reason"] == reason, (line, row["bad_reason"], row["bad_detail"])
        if clean is not None:
            assert {name: events[i][name] for name in CLEAN_COLUMNS} == clean, line
            assert {name: row[name] for name in LINE_CLEAN_COLUMNS} == {
                name: clean[name] for name in LINE_CLEAN_COLUMNS
            }
