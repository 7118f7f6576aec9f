import pytest

from pixel_api.retention import Retention

pytestmark = pytest.mark.fast


def test_confirm_drops_below_committed_offset_per_partition():
    r = Retention(100)
    for off in range(5):
        r.add("t", 0, off, b"k", b"v%d" % off)
        r.add("t", 1, off, b"k", b"w%d" % off)
    assert r.confirm({("t", 0): 3, ("t", 1): 0}) == 3
    assert len(r) == 7


def test_take_topic_returns_delivery_order():
    r = Retention(100)
    r.add("t", 1, 0, b"k", b"a")
    r.add("t", 0, 0, b"k", b"b")
    r.add("u", 0, 0, b"k", b"x")
    r.add("t", 1, 1, b"k", b"c")
    recs, oldest = r.take_topic("t")
    assert [v for _t, _k, v in recs] == [b"a", b"b", b"c"] and oldest > 0
    assert len(r) == 1


def test_cap_evicts_the_oldest():
    r = Retention(3)
    for off in range(5):
        r.add("t", off % 2, off, b"k", b"%d" % off)
    recs, _ = r.take_topic("t")
    assert [v for *_, v in recs] == [b"2", b"3", b"4"]
