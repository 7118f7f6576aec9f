import pytest

from events.identity import truncate_ip, visitor_id

pytestmark = pytest.mark.fast


@pytest.mark.parametrize(
    "ip,expected",
    [
        ("203.0.113.77", "203.0.113.0"),
        ("2001:db8:abcd:12:1:2:3:4", "2001:db8:abcd::"),
        ("::ffff:198.51.100.9", "198.51.100.0"),
        ("not-an-ip", ""),
        ("", ""),
    ],
)
def test_truncate_ip(ip, expected):
    assert truncate_ip(ip) == expected


def test_visitor_id_depends_on_every_input_and_the_salt():
    base = visitor_id(b"s" * 32, "a.com", "203.0.113.7", "UA")
    assert len(base) == 16
    assert base == visitor_id(b"s" * 32, "a.com", "203.0.113.7", "UA")
    others = {
        visitor_id(b"t" * 32, "a.com", "203.0.113.7", "UA"),
        visitor_id(b"s" * 32, "b.com", "203.0.113.7", "UA"),
        visitor_id(b"s" * 32, "a.com", "203.0.113.8", "UA"),
        visitor_id(b"s" * 32, "a.com", "203.0.113.7", "UA2"),
    }
    assert base not in others and len(others) == 4


def test_fields_cannot_be_shifted_into_each_other():
    assert visitor_id(b"k", "ab", "c", "d") != visitor_id(b"k", "a", "bc", "d")
