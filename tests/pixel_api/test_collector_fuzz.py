"""Property-based fuzzing of the collector's inputs, through the real ASGI app with a real
hand-off to a real broker: whatever arrives, never a 5xx and never an exception."""

from __future__ import annotations

import asyncio

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
