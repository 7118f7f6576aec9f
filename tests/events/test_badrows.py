import orjson
import pytest

from events.badrows import MAX_BAD_PAYLOAD_BYTES, BadReason, encode_bad_row, make_bad_row

pytestmark = pytest.mark.fast


def test_bad_row_keeps_payload_and_origin():
    row = make_bad_row(
        BadReason.INVALID_JSON,
        b"\xff{x",
        source="lander",
        detail="d",
        now_ms=5,
        topic="pixel.raw",
        partition=2,
        offset=9,
    )
    assert row["reason"] == "invalid_json" and row["ts"] == 5 and row["offset"] == 9
    assert row["payload_bytes"] == 3 and not row["payload_truncated"]
    assert orjson.loads(encode_bad_row(row))["payload"].endswith("{x")


def test_bad_row_payload_is_bounded():
    row = make_bad_row(BadReason.QUERY_TOO_LARGE, b"a" * (MAX_BAD_PAYLOAD_BYTES * 4), source="collector")
    assert len(row["payload"]) == MAX_BAD_PAYLOAD_BYTES
    assert row["payload_truncated"] and row["payload_bytes"] == MAX_BAD_PAYLOAD_BYTES * 4
