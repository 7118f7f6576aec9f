from urllib.parse import parse_qsl, quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.proxies import TrustedProxies
from pixel_api.bodies import beacon_params
from pixel_api.collector import PIXEL_PARAMS, parse_pixel_query, request_headers

pytestmark = pytest.mark.fast


def test_forwarded_for_only_from_trusted_proxies():
    p = TrustedProxies(["10.0.0.0/8"])
    assert p.client_ip("203.0.113.9", "1.2.3.4") == "203.0.113.9"  # untrusted peer: ignored
    assert p.client_ip("10.1.1.1", "1.2.3.4") == "1.2.3.4"
    # Left part is client-controlled: take the right-most hop that isn't our proxy.
    assert p.client_ip("10.1.1.1", "6.6.6.6, 1.2.3.4, 10.2.2.2") == "1.2.3.4"
    # Garbage is still "the client" (the visitor hash takes it as is; ip_trunc becomes "").
    assert p.client_ip("10.1.1.1", "garbage") == "garbage"


def test_no_proxies_configured_means_peer_address():
    assert TrustedProxies([]).client_ip("198.51.100.1", "1.1.1.1") == "198.51.100.1"


def test_request_headers_picks_first_of_each():
    h = request_headers([(b"user-agent", b"A"), (b"user-agent", b"B"), (b"cookie", b"x"), (b"dnt", b"1")])
    assert h == {b"user-agent": "A", b"dnt": "1"}


@pytest.mark.parametrize(
    "body,ok",
    [
        (b'{"site":"a","url":"https://a/"}', True),
        (b'{"site":"a","uid":12}', True),
        (b'{"site":{"x":1}}', False),
        (b"[]", False),
        (b"not json", False),
    ],
)
def test_beacon_params(body, ok):
    params, problem = beacon_params(body)
    assert (problem is None) is ok
    if ok:
        assert params["site"] == "a"


# What browsers send: ASCII, with everything else percent-encoded (valid or not).
ascii_junk = st.binary(max_size=60).map(lambda b: bytes(c & 0x7F for c in b))
values = st.one_of(st.text(max_size=30).map(lambda t: quote_plus(t, errors="surrogatepass").encode()), ascii_junk)
query_parts = st.lists(
    st.tuples(
        st.sampled_from([b"site", b"url", b"ref", b"uid", b"eid", b"e", b"x", b"sit%65", b"u+rl", b""]), values
    ).map(lambda kv: kv[0] + b"=" + kv[1]),
    max_size=8,
)


@given(parts=query_parts, junk=ascii_junk)
def test_parse_pixel_query_agrees_with_parse_qsl(parts, junk):
    query = b"&".join(parts + [junk])
    expected: dict[str, str] = {}
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True, encoding="utf-8"):
        if key in PIXEL_PARAMS:
            expected.setdefault(key, value)
    assert parse_pixel_query(query) == expected


def test_parse_pixel_query_examples():
    q = b"site=a.com&url=https%3A%2F%2Fa.com%2Fx%3Fy%3D1&ref=&e=sign+up&site=ignored&zzz=%ZZ"
    assert parse_pixel_query(q) == {"site": "a.com", "url": "https://a.com/x?y=1", "ref": "", "e": "sign up"}
    # Raw (unescaped) UTF-8 is read as UTF-8; invalid bytes become U+FFFD, never an error.
    assert parse_pixel_query("site=café".encode()) == {"site": "café"}
    assert parse_pixel_query(b"site=\xff%FF") == {"site": "\ufffd\ufffd"}
