import gzip

import orjson
import pytest

from batch_layer.lander.landing import Message, land_batch

pytestmark = pytest.mark.fast
H8 = 1_795_507_200_000  # 2026-11-24T08:00:00Z (a whole hour)
NOW = H8 + 7_200_000


def raw(i, ts):
    return orjson.dumps({"v": 1, "event_id": f"e{i}", "ts": ts, "site": "a.com"})


def lines(data: bytes) -> list[dict]:
    return [orjson.loads(x) for x in gzip.decompress(data).splitlines()]


def test_files_per_hour_named_by_logical_offsets():
    msgs = [Message(10, raw(0, H8 + 5), 0), Message(11, raw(1, H8 + 3_600_000), 0), Message(12, raw(2, H8 + 9), 0)]
    out = land_batch(msgs, partition=3, offset_base=1000, is_raw_topic=True, topic="pixel.raw", now_ms=NOW)
    assert sorted(out.files) == [
        "raw/date=2026-11-24/hour=08/3-1010-1012.jsonl.gz",
        "raw/date=2026-11-24/hour=09/3-1011-1011.jsonl.gz",
    ]
    assert [e["event_id"] for e in lines(out.files["raw/date=2026-11-24/hour=08/3-1010-1012.jsonl.gz"])] == ["e0", "e2"]
    assert out.events == 3 and out.bad_rows == []


def test_landing_is_byte_for_byte_deterministic():
    msgs = [Message(i, raw(i, H8 + i), 0) for i in range(50)]
    a = land_batch(msgs, partition=0, offset_base=0, is_raw_topic=True, topic="t", now_ms=NOW)
    b = land_batch(msgs, partition=0, offset_base=0, is_raw_topic=True, topic="t", now_ms=NOW + 999)
    assert a.files == b.files


def test_invalid_messages_become_bad_rows_and_the_rest_lands():
    msgs = [Message(0, raw(0, H8), 0), Message(1, b"garbage", 0), Message(2, b'{"v":1}', 0), Message(3, raw(3, H8), 0)]
    out = land_batch(msgs, partition=1, offset_base=0, is_raw_topic=True, topic="pixel.raw", now_ms=NOW)
    assert [r["reason"] for r in out.bad_rows] == ["invalid_json", "missing_field"]
    assert [(r["partition"], r["offset"]) for r in out.bad_rows] == [(1, 1), (1, 2)]
    (path,) = out.files
    assert path.endswith("/1-0-3.jsonl.gz") and len(lines(out.files[path])) == 2


def test_multiline_json_is_kept_on_one_line():
    pretty = b'{"v": 1,\n "event_id": "x", "ts": %d, "site": "a"}' % H8
    out = land_batch([Message(0, pretty, 0)], partition=0, offset_base=0, is_raw_topic=True, topic="t", now_ms=NOW)
    (data,) = out.files.values()
    assert lines(data) == [{"v": 1, "event_id": "x", "ts": H8, "site": "a"}]


def test_bad_rows_topic_lands_under_badraw_by_message_time():
    row = orjson.dumps({"v": 1, "reason": "query_too_large"})
    out = land_batch(
        [Message(0, row, H8 + 1), Message(1, b"\xffnot json", H8 + 2)],
        partition=0,
        offset_base=0,
        is_raw_topic=False,
        topic="pixel.bad",
        now_ms=NOW,
    )
    (path,) = out.files
    assert path == "badraw/date=2026-11-24/hour=08/0-0-1.jsonl.gz"
    got = lines(out.files[path])
    assert got[0]["reason"] == "query_too_large" and got[1]["reason"] == "invalid_json"


def test_ticks_are_skipped_neither_landed_nor_bad():
    from events.raw import tick_message

    msgs = [Message(0, raw(0, H8), 0), Message(1, tick_message(H8 + 1), 0), Message(2, raw(2, H8 + 2), 0)]
    out = land_batch(msgs, partition=0, offset_base=0, is_raw_topic=True, topic="pixel.raw", now_ms=NOW)
    (path,) = out.files
    assert [e["event_id"] for e in lines(out.files[path])] == ["e0", "e2"]
    assert out.events == 2 and out.bad_rows == []
