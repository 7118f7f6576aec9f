"""Collector -> real tansu -> lander -> raw files, with failures injected into real processes."""

from __future__ import annotations

import gzip
import os
import re
import signal
import socket
import threading
import time

import httpx
import pytest

from pixel_api.spool import Spool
from tests.harness import Broker, read_landed, send_hits, wait_until

pytestmark = pytest.mark.slow

FILE_RE = re.compile(r"raw/date=\d{4}-\d{2}-\d{2}/hour=\d{2}/(\d+)-(\d+)-(\d+)\.jsonl\.gz$")


def base_url(settings) -> str:
    return f"http://{settings.collector_host}:{settings.collector_port}"


def landed_urls(settings) -> list[str]:
    return [e["url"] for e in read_landed(settings.data_dir)]


def test_hits_land_exactly_once_with_the_right_fields(settings, broker, services):
    services("lander")
    services("collector")
    n = 200
    started_ms = int(time.time() * 1000)
    send_hits(base_url(settings), n, site="shop.example", tag="p")
    # Bad input: still answered, and it becomes a bad row with its reason.
    with httpx.Client(base_url=base_url(settings)) as client:
        r = client.get("/p.gif?site=shop.example&url=" + "x" * 9000)
        assert r.status_code == 200 and r.content[:6] == b"GIF89a"
        assert client.post("/collect", content=b"{not json").status_code == 400

    wait_until(lambda: len(landed_urls(settings)) >= n, 30, message=f"{n} landed events")
    time.sleep(1.5)  # several more flush intervals: nothing else may appear
    events = read_landed(settings.data_dir)
    assert sorted(e["url"] for e in events) == sorted(f"https://shop.example/p{i}" for i in range(n))
    assert len({e["event_id"] for e in events}) == n
    assert {e["src"] for e in events[:]} == {"get", "post"}
    assert sum(e["src"] == "get" for e in events) == n // 2
    finished_ms = int(time.time() * 1000)
    for e in events:
        assert e["v"] == 1 and e["site"] == "shop.example" and e["event"] == "pageview"
        assert started_ms - 1000 <= e["ts"] <= finished_ms
        assert e["ip_trunc"] == "127.0.0.0"
        assert re.fullmatch(r"[0-9a-f]{16}", e["visitor_id"])
        assert e["ua"].startswith("Mozilla/5.0")
    # Same IP + UA + site + day -> one visitor; the full IP is stored nowhere.
    assert len({e["visitor_id"] for e in events}) == 1
    files = list((settings.data_dir / "raw").rglob("*.jsonl.gz"))
    assert all(b"127.0.0.1" not in gzip.decompress(p.read_bytes()) for p in files)

    # File names are <partition>-<first>-<last> and hold exactly that many events.
    for path in files:
        m = FILE_RE.search(path.as_posix())
        assert m, path
        assert len(gzip.decompress(path.read_bytes()).splitlines()) == int(m[3]) - int(m[2]) + 1

    bad = wait_until(
        lambda: len(read_landed(settings.data_dir, "badraw")) >= 2 and read_landed(settings.data_dir, "badraw"),
        20,
        message="bad rows",
    )
    assert sorted(b["reason"] for b in bad) == ["body_not_json", "query_too_large"]
    assert all(b["source"] == "collector" for b in bad)

    metrics = httpx.get(base_url(settings) + "/metrics").text
    assert re.search(r'pixel_hits_total\{route="gif"\} 10[01]\.0', metrics)
    assert 'pixel_bad_requests_total{reason="query_too_large"} 1.0' in metrics


def test_broker_killed_while_hits_keep_coming(settings, broker, services, request):
    services("lander")
    services("collector")
    url = base_url(settings)
    send_hits(url, 60, tag="before")  # some of these are still only in the broker's memory...
    broker.kill()  # ...when it dies, losing its whole log
    send_hits(url, 60, tag="down")  # every response is still the GIF / 204 (asserted inside)
    # librdkafka notices the dead broker within a moment; from then on hits go to the spool.
    wait_until(lambda: httpx.get(url + "/healthz").json()["spooling"], 15, message="spooling")
    send_hits(url, 20, tag="spooled")
    assert httpx.get(url + "/healthz").json()["broker_up"] is False
    wait_until(lambda: any(settings.spool_dir.glob("*.spool")), 5, message="a spool segment on disk")

    restarted = Broker(settings).start()  # same port, empty log, new topic ids
    request.addfinalizer(restarted.kill)
    send_hits(url, 30, tag="after")

    expected = sorted(
        [f"https://example.com/before{i}" for i in range(60)]
        + [f"https://example.com/down{i}" for i in range(60)]
        + [f"https://example.com/spooled{i}" for i in range(20)]
        + [f"https://example.com/after{i}" for i in range(30)]
    )
    wait_until(
        lambda: len(landed_urls(settings)) >= len(expected), 60, message="all events landed after broker restart"
    )
    time.sleep(2)
    events = read_landed(settings.data_dir)
    assert sorted(e["url"] for e in events) == expected
    assert len({e["event_id"] for e in events}) == len(events)
    # Nothing from before the restart was overwritten: file names never repeat across generations.
    names = [p.name for p in (settings.data_dir / "raw").rglob("*.jsonl.gz")]
    assert len(names) == len(set(names))


def test_lander_sigkilled_mid_stream_leaves_no_gap_and_no_duplicate(settings, broker, services):
    settings.lander_flush_events = 40  # many small files -> the kill lands mid-write often
    lander = services("lander")
    services("collector")
    n = 1200
    sender = threading.Thread(target=send_hits, args=(base_url(settings), n), kwargs={"tag": "k"})
    sender.start()
    wait_until(lambda: len(landed_urls(settings)) >= 200, 30, interval=0.05, message="first files")
    lander.kill()  # SIGKILL: no flush, no commit
    time.sleep(1)
    lander = services("lander")
    sender.join()
    wait_until(lambda: len(landed_urls(settings)) >= n, 60, message=f"{n} events after restart")
    time.sleep(2)
    events = read_landed(settings.data_dir)
    assert sorted(e["url"] for e in events) == sorted(f"https://example.com/k{i}" for i in range(n))
    assert len({e["event_id"] for e in events}) == n


def test_collector_killed_while_spooling_replays_on_restart(settings, services):
    """No broker at all: hits are spooled; the collector is SIGKILLed; once a broker exists,
    the restarted collector replays the previous process's spool."""
    collector = services("collector")
    url = base_url(settings)
    wait_until(lambda: httpx.get(url + "/healthz").json()["spooling"], 20, message="spooling")
    send_hits(url, 80, tag="s")
    wait_until(lambda: sum(1 for _ in Spool.iter_all(settings.spool_dir)) >= 80, 10, message="80 spooled records")
    collector.kill()
    broker = Broker(settings).start()
    try:
        services("lander")
        services("collector")
        wait_until(lambda: len(landed_urls(settings)) >= 80, 60, message="spooled events landed")
        time.sleep(1.5)
        assert sorted(landed_urls(settings)) == sorted(f"https://example.com/s{i}" for i in range(80))
        wait_until(lambda: not list(settings.spool_dir.glob("*.spool")), 10, message="spool emptied")
    finally:
        broker.kill()


def test_two_workers_land_everything_and_metrics_add_up(settings, broker, services):
    settings.collector_workers = 2
    services("lander")
    services("collector")
    url = base_url(settings)
    n = 300
    threads = [threading.Thread(target=send_hits, args=(url, n // 3), kwargs={"tag": f"w{t}-"}) for t in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_until(lambda: len(landed_urls(settings)) >= n, 30, message=f"{n} events")
    time.sleep(1)
    assert len(set(landed_urls(settings))) == len(landed_urls(settings)) == n

    def total_hits():
        text = httpx.get(url + "/metrics").text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("pixel_hits_total{"))

    # Served by either worker, /metrics sums both (prometheus multiprocess mode).
    wait_until(lambda: total_hits() == n, 10, message="metrics summed across workers")


def test_workers_die_with_a_sigkilled_master(settings, broker, services):
    """A SIGKILLed `pixel collector` must not leave workers serving (and holding the port)."""
    settings.collector_workers = 2
    collector = services("collector")
    os.kill(collector.proc.pid, signal.SIGKILL)  # the master only, as an OOM killer would
    collector.proc.wait()

    def port_free():
        try:
            httpx.get(base_url(settings) + "/healthz", timeout=1)
            return False
        except httpx.TransportError:
            return True

    wait_until(port_free, 15, message="workers gone after their master was SIGKILLed")


def test_full_producer_queue_spills_to_the_spool_and_loses_nothing(settings, broker, services):
    settings.producer_queue_max_messages = 20  # librdkafka refuses the 21st queued event...
    settings.producer_linger_ms = 1000  # ...because nothing leaves the queue for 1 s
    services("lander")
    collector = services("collector")
    send_hits(base_url(settings), 120, tag="q")
    wait_until(lambda: len(landed_urls(settings)) >= 120, 60, message="120 events landed")
    time.sleep(1.5)
    assert sorted(landed_urls(settings)) == sorted(f"https://example.com/q{i}" for i in range(120))
    metrics = httpx.get(base_url(settings) + "/metrics").text
    spooled = float(re.search(r"^pixel_spooled_total (\S+)", metrics, re.M)[1])
    replayed = float(re.search(r"^pixel_replayed_total (\S+)", metrics, re.M)[1])
    assert spooled > 0 and replayed == spooled, collector.log()


def test_the_server_bounds_request_lines_and_headers(settings, broker, services):
    """Past the collector's own limits (a long query is a bad row, still a GIF), the HTTP server
    answers oversized requests itself, before any of them reaches the app: every request is
    bounded in memory (granian: a 64 KB request target, 100 headers, ~400 KB of them)."""
    services("collector")

    def first_line(request: bytes) -> bytes:
        with socket.create_connection((settings.collector_host, settings.collector_port), timeout=10) as s:
            s.sendall(request)
            return s.recv(100).split(b"\r\n")[0]

    head = b"GET /p.gif?site=a.example HTTP/1.1\r\nHost: a\r\n"
    assert first_line(head + b"\r\n") == b"HTTP/1.1 200 OK"
    assert first_line(f"GET /p.gif?site=a&u={'x' * 70_000} HTTP/1.1\r\nHost: a\r\n\r\n".encode()).endswith(
        b" 414 URI Too Long"
    )
    many = b"".join(b"x-h%d: v\r\n" % i for i in range(200))
    assert b" 431 " in first_line(head + many + b"\r\n")
    assert b" 431 " in first_line(head + b"x-big: " + b"v" * 1_000_000 + b"\r\n\r\n")
    assert first_line(head + b"\r\n") == b"HTTP/1.1 200 OK"  # and it goes on serving
