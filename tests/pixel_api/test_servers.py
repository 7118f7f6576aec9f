"""The collector answers the same on each of its servers: granian in RSGI (the default), granian
in ASGI, and uvicorn (ASGI). Real processes, real sockets."""

from __future__ import annotations

import socket

import httpx
import orjson
import pytest

from pixel_api.app import GIF
from pixel_api.rsgi import address_of, host_of
from tests.harness import read_landed, wait_until

HIT = "/p.gif?site=a.example&url=https%3A%2F%2Fa.example%2Fpricing%3Futm_source%3Dnews&ref=https%3A%2F%2Ft.co%2Fx"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
BEACON = orjson.dumps({"site": "a.example", "url": "https://a.example/beacon"})
PLAUSIBLE = orjson.dumps(
    {"domain": "a.example", "name": "signup", "url": "https://a.example/x", "props": {"plan": "pro"}}
)
# (method, path, body, headers): every kind of answer the collector gives.
REQUESTS = [
    ("GET", HIT, None, {"user-agent": UA, "referer": "https://a.example/", "accept-language": "de-DE,de;q=0.9"}),
    ("HEAD", "/p.gif?site=a.example", None, {}),
    ("POST", "/p.gif", b"", {}),
    ("PUT", "/p.gif", b"x", {}),
    ("POST", "/collect", BEACON, {"user-agent": UA}),
    ("POST", "/collect", b"{not json", {}),
    ("POST", "/collect", b"x" * 100_000, {}),
    ("POST", "/api/event", PLAUSIBLE, {"content-type": "application/json", "user-agent": UA}),
    ("GET", "/p.js", None, {"accept-encoding": "gzip"}),
    ("GET", "/p.js", None, {"accept-encoding": "identity"}),
    ("GET", "/healthz", None, {}),
    ("GET", "/openapi.json", None, {}),
    ("GET", "/nope", None, {}),
    ("DELETE", "/collect", None, {}),
    # No WebSocket route: an upgrade request is an ordinary request.
    ("GET", "/healthz", None, {"connection": "upgrade", "upgrade": "websocket", "sec-websocket-version": "13"}),
]


def test_rsgi_addresses():
    assert host_of("203.0.113.7:51234") == "203.0.113.7"
    assert host_of("[2001:db8::1]:443") == "2001:db8::1"
    assert address_of("[::1]:8080") == ("::1", 8080)
    assert address_of("unix") is None


def answers(settings) -> list[tuple]:
    out = []
    with httpx.Client(base_url=f"http://{settings.collector_host}:{settings.collector_port}") as client:
        for method, path, body, headers in REQUESTS:
            r = client.request(method, path, content=body, headers=headers)
            content = r.content  # decompressed by httpx
            if path == "/healthz":  # its numbers move with the landing; its shape must not
                content = sorted(orjson.loads(content))
            out.append(
                (
                    method,
                    path[:40],
                    r.status_code,
                    r.headers.get("content-type"),
                    r.headers.get("content-encoding"),
                    r.headers.get("cache-control"),
                    r.headers.get("allow"),
                    content,
                )
            )
    return out


def raw_request(settings, request: bytes) -> bytes:
    with socket.create_connection((settings.collector_host, settings.collector_port), timeout=10) as s:
        s.sendall(request)
        return s.recv(200).split(b"\r\n")[0]


SERVERS = ("granian", "granian-asgi", "uvicorn")
LATIN_UA = (
    b"GET /p.gif?site=a.example&url=https%3A%2F%2Fa.example%2Flatin HTTP/1.1\r\n"
    b"Host: a\r\nUser-Agent: Web caf\xe9\r\n\r\n"
)


@pytest.mark.slow
def test_every_server_answers_alike_and_lands_alike(settings, broker, services):
    services("lander")
    by_server, landed, seen = {}, {}, set()
    for server in SERVERS:
        settings.collector_server = server
        collector = services("collector")
        by_server[server] = answers(settings)
        if server == "granian":  # a query that isn't UTF-8: refused by the HTTP layer, before the app
            refused = raw_request(settings, b"GET /p.gif?site=a&x=\xe9\xff HTTP/1.1\r\nHost: a\r\n\r\n")
            assert refused.endswith(b"400 Bad Request")
        assert raw_request(settings, LATIN_UA) == b"HTTP/1.1 200 OK"
        collector.stop()
        total = len(seen) + 4
        wait_until(lambda: len(read_landed(settings.data_dir)) == total, 30, message="4 events landed")  # noqa: B023
        landed[server] = [e for e in read_landed(settings.data_dir) if e["event_id"] not in seen]
        seen |= {e["event_id"] for e in landed[server]}

    # A header value that isn't ASCII (obs-text): the ASGI servers keep its bytes, RSGI omits it.
    latin = {server: next(e for e in events if e["url"].endswith("/latin")) for server, events in landed.items()}
    assert latin["granian-asgi"]["ua"] == latin["uvicorn"]["ua"] == "Web caf\u00e9"
    assert latin["granian"]["ua"] == ""
    landed = {server: [e for e in events if not e["url"].endswith("/latin")] for server, events in landed.items()}

    assert by_server["granian"] == by_server["granian-asgi"] == by_server["uvicorn"]
    statuses = [(a[0], a[1][:12], a[2]) for a in by_server["granian"]]
    assert [s for _, _, s in statuses] == [200, 200, 405, 405, 204, 400, 413, 202, 200, 200, 200, 200, 404, 405, 200]
    gif, head = by_server["granian"][:2]
    assert gif[3] == "image/gif" and gif[5] == "no-store" and gif[7] == GIF
    assert head[7] == b""
    assert by_server["granian"][2][6] == "GET, HEAD"

    def fields(event: dict) -> tuple:
        keep = ("src", "site", "event", "url", "referrer", "ua", "lang", "ip_trunc", "visitor_id", "props")
        return tuple(orjson.dumps(event.get(k)) for k in keep)

    assert sorted(map(fields, landed["granian"])) == sorted(map(fields, landed["uvicorn"]))
    assert sorted(map(fields, landed["granian-asgi"])) == sorted(map(fields, landed["uvicorn"]))
    pixel = next(e for e in landed["granian"] if e["src"] == "get")
    assert pixel["ua"] == UA and pixel["lang"] == "de-DE" and pixel["ip_trunc"] == "127.0.0.0"
    assert pixel["url"] == "https://a.example/pricing?utm_source=news" and pixel["referrer"] == "https://t.co/x"
