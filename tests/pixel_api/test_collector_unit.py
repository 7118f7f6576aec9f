import pytest

from pixel_api.app import beacon_params
from pixel_api.collector import TrustedProxies, request_headers

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
