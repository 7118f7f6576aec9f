"""Property-based fuzzing of the collector's inputs, through the real ASGI app with a real
hand-off to a real broker, and over the wire to the collector as it runs by default (granian,
RSGI): whatever arrives, never a 5xx and never an exception."""

from __future__ import annotations

import asyncio
import string

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pixel_api.app import GIF, create_app

pytestmark = pytest.mark.slow

text = st.text(st.characters(codec="utf-8"), max_size=3000)
header_value = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=600)


@pytest.fixture(scope="module")
def app_and_loop(tmp_path_factory):
    from tests.harness import Broker, make_settings

    s = make_settings(tmp_path_factory.mktemp("fuzz") / "data", max_query_bytes=2048)
    broker = Broker(s).start()
    app = create_app(s)
    app.collector.handoff.start()
    loop = asyncio.new_event_loop()
    yield app, loop
    loop.close()
    app.collector.handoff.stop(wait_landed_s=0)
    broker.kill()


def call(app_and_loop, method: str, url: str, **kw) -> httpx.Response:
    app, loop = app_and_loop

    async def go():
        transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.request(method, url, **kw)

    return loop.run_until_complete(go())


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.binary(max_size=4000), ua=header_value, ref=header_value, xff=header_value)
def test_pixel_never_fails(app_and_loop, query, ua, ref, xff):
    # Raw bytes in the query: invalid %-escapes, invalid UTF-8, NULs, over-long queries.
    raw_query = query.replace(b"#", b"").replace(b" ", b"+")
    app, loop = app_and_loop
    sent = []

    async def go():
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/p.gif",
            "query_string": raw_query,
            "headers": [
                (b"user-agent", ua.encode("latin-1")),
                (b"referer", ref.encode("latin-1")),
                (b"x-forwarded-for", xff.encode("latin-1")),
            ],
            "client": ("203.0.113.5", 1),
            "http_version": "1.1",
            "scheme": "http",
            "root_path": "",
        }

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        await app(scope, receive, send)

    loop.run_until_complete(go())
    assert sent[0]["status"] == 200 and sent[1]["body"] == GIF


@hsettings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        st.binary(max_size=40000),
        st.dictionaries(
            st.sampled_from(["site", "url", "ref", "uid", "eid", "e", "x"]),
            st.one_of(text, st.integers(), st.none(), st.lists(st.integers())),
        ),
    )
)
def test_collect_never_5xx(app_and_loop, body):
    if isinstance(body, dict):
        r = call(app_and_loop, "POST", "/collect", json=body)
    else:
        r = call(app_and_loop, "POST", "/collect", content=body)
    assert r.status_code in (204, 400, 413), r.text
    if r.status_code != 204:
        assert "error" in r.json()


@hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(["/p.gif", "/collect", "/healthz", "/nope"]),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"]),
)
def test_any_method_on_any_path_is_never_5xx(app_and_loop, path, method):
    assert call(app_and_loop, method, path).status_code < 500


def test_fuzzed_traffic_was_all_handed_off(app_and_loop):
    app, _ = app_and_loop
    assert app.collector.handoff.wait_idle(10)
    assert app.collector.handoff._thread.is_alive()
    assert not app.collector.handoff.inbox  # everything taken by the hand-off thread


# The same inputs over the wire to the collector as it runs by default (granian, RSGI): the
# HTTP layer may refuse a malformed request itself (400/414/431), the app never fails.
@pytest.fixture(scope="module")
def live_collector(tmp_path_factory):
    from tests.harness import Broker, Service, make_settings

    tmp = tmp_path_factory.mktemp("fuzz-live")
    s = make_settings(tmp / "data", max_query_bytes=2048)
    broker = Broker(s).start()
    collector = Service("collector", s, tmp).start()
    yield s, collector
    collector.stop()
    broker.kill()


def over_the_wire(settings, request: bytes) -> tuple[int, bytes]:
    import socket

    with socket.create_connection((settings.collector_host, settings.collector_port), timeout=10) as sock:
        sock.sendall(request)
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


# Mostly what a URL may hold, %-escapes included, so most requests get past the HTTP layer.
url_text = st.text(st.sampled_from(string.ascii_letters + string.digits + "%&=+-._~!$'()*,;:@/?"), max_size=4000)


def header_bytes(value: str) -> bytes:
    return value.encode("latin-1").replace(b"\r", b"").replace(b"\n", b"")


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.one_of(st.binary(max_size=4000), url_text.map(str.encode)), ua=header_value, ref=header_value)
def test_pixel_over_rsgi_never_fails(live_collector, query, ua, ref):
    settings, _ = live_collector
    target = b"/p.gif?" + bytes(b for b in query if b not in b" #\r\n\t")
    request = b"GET " + target + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
    request += b"User-Agent: " + header_bytes(ua) + b"\r\nReferer: " + header_bytes(ref) + b"\r\n\r\n"
    status, body = over_the_wire(settings, request)
    assert status in (200, 400, 414), status
    if status == 200:
        assert body == GIF


@hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=40000), path=st.sampled_from(["/collect", "/api/event"]))
def test_posts_over_rsgi_never_fail(live_collector, body, path):
    settings, _ = live_collector
    head = f"POST {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    status, _ = over_the_wire(settings, head.encode() + body)
    assert status in (202, 204, 400, 413), status


def test_the_live_collector_logged_no_exception(live_collector):
    _, collector = live_collector
    log = collector.log_path.read_text(errors="replace")
    assert "Traceback" not in log and "exception" not in log.lower(), log[-3000:]
