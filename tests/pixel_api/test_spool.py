import pytest

from pixel_api.spool import Spool

pytestmark = pytest.mark.fast


def records(n, start=0):
    return [("pixel.raw", b"site", f'{{"n":{i}}}'.encode()) for i in range(start, start + n)]


def test_append_seal_and_replay_in_order(tmp_path):
    spool = Spool(tmp_path)
    spool.append(records(3))
    spool.append(records(2, 3))
    assert spool.claim(spool.segments()[0]) is None  # the writer holds it
    spool.seal()
    fh = spool.claim(spool.segments()[0])
    got, pos = spool.read(fh, 10)
    assert [v for _t, _k, v in got] == [f'{{"n":{i}}}'.encode() for i in range(5)]
    spool.finish(fh)
    assert spool.segments() == []


def test_cursor_resumes_after_a_confirmed_chunk(tmp_path):
    spool = Spool(tmp_path)
    spool.append(records(10))
    spool.seal()
    fh = spool.claim(spool.segments()[0])
    first, pos = spool.read(fh, 4)
    spool.advance(fh, pos)
    fh.close()  # "crash" after confirming the first chunk
    fh = Spool(tmp_path).claim(spool.segments()[0])
    rest, _ = Spool.read(fh, 100)
    assert [v for *_, v in first + rest] == [v for *_, v in records(10)]


def test_torn_tail_is_skipped_not_fatal(tmp_path):
    spool = Spool(tmp_path)
    spool.append(records(3))
    spool.seal()
    seg = spool.segments()[0]
    data = seg.read_bytes()
    seg.write_bytes(data[:-4])  # power cut mid-record
    fh = spool.claim(seg)
    got, pos = spool.read(fh, 10)
    assert len(got) == 2 and pos == len(data) - 4


def test_keys_with_nul_cannot_break_framing(tmp_path):
    spool = Spool(tmp_path)
    spool.append([("pixel.raw", b"a\0b", b"v\0alue")])
    spool.seal()
    assert list(Spool.iter_all(tmp_path)) == [("pixel.raw", b"ab", b"v\0alue")]


def test_resend_segment_sorts_before_later_segments(tmp_path):
    spool = Spool(tmp_path)
    spool.append(records(1), name_hint_ns=2_000)
    spool.seal()
    spool.write_segment(records(1, 1), name_hint_ns=1_000)
    assert spool.segments()[0].name.startswith(f"{1000:020d}")
