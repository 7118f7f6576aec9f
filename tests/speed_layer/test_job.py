"""The speed-layer job on a real Flink mini-cluster against a real tansu broker.

A known stream, produced in phases so the watermark advances deterministically between them:
several sites, duplicate event_ids, a retried client eid, bots, events out of order within the
watermark, events later than it, and an invalid event. The pixel.agg output (read committed,
the sink is transactional) must match exactly what the events library says per window.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from events.aggregate import BOTS, DIMENSIONS
from events.enrich import enrich_event
from events.rules import NO_RULES, Rules
from events.sketches import RELATIVE_ERROR, estimate
from pixel_api.ticker import Ticker
from serving.realtime.duckdb_store import DuckDBStore
from serving.realtime.ingest import AggIngestor
from tests.harness import Service, wait_until

pytestmark = pytest.mark.slow

T0 = 1_795_507_200_000  # 2026-11-24T08:00:00Z, aligned to the 2 s windows
WINDOW = 2000
UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7; rv:133.0) Gecko/20100101 Firefox/133.0",
]
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
# A kiosk screen's browser: a bot only by the operator's own rule (PIXEL_BOT_USER_AGENTS).
KIOSK = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36 AcmeKiosk/3"
RULES = Rules(bot_user_agents=("acmekiosk/",))
BOTS_UAS = (BOT, KIOSK)
REFS = ["", "https://www.google.com/", "https://t.co/x", "https://news.ycombinator.com/"]


def event(i: int, ts: int, site: str, **kw) -> dict:
    e = {
        "v": 1,
        "event_id": f"{site}-{i}",
        "ts": ts,
        "site": site,
        "event": "pageview",
        "url": f"https://{site}/p{i % 4}",
        "referrer": REFS[i % len(REFS)],
        "ua": UAS[i % len(UAS)],
        "ip_trunc": "203.0.113.0",
        "visitor_id": f"v{i % 13}",
        "uid": "",
        "eid": "",
        "lang": "en",
        "dnt": False,
    }
    e.update(kw)
    return e


def expected_rows(events: list[dict], rules: Rules = NO_RULES) -> dict[tuple, int]:
    """(window_start, site, dimension, value) -> pageviews, by the events library's rules:
    per window, the earliest event of each dedupe key counts (as in the batch layer), once."""
    first: dict[tuple, dict] = {}
    for raw in events:
        clean, bad = enrich_event(raw, rules)
        if bad:
            continue
        key = (clean["ts"] // WINDOW * WINDOW, clean["dedupe_key"])
        if key not in first or clean["ts"] < first[key]["ts"]:
            first[key] = clean
    counts: dict[tuple, int] = defaultdict(int)
    for (w, _), clean in first.items():
        if clean["is_bot"]:
            counts[(w, clean["site"], BOTS, "")] += 1
            continue
        for dim, col in DIMENSIONS.items():
            counts[(w, clean["site"], dim, clean[col] if col else "")] += 1
    return dict(counts)


def per_dimension(rows: list[dict]) -> dict[tuple, int]:
    """Finest-grain speed rows -> (window_start, site, dimension, value) -> events, the shape of
    expected_rows (a dimension's value is the row's column of the same name)."""
    out: dict[tuple, int] = defaultdict(int)
    for r in rows:
        w, site = r["window_start"], r["site"]
        if r["is_bot"]:
            out[(w, site, BOTS, "")] += r["events"]
            continue
        for dim in DIMENSIONS:
            out[(w, site, dim, r[dim] if dim != "total" else "")] += r["events"]
    return dict(out)


def read_agg(settings) -> list[dict]:
    c = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"t{time.time()}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    c.assign([TopicPartition(settings.agg_topic, p, 0) for p in range(settings.raw_partitions)])
    rows, idle = [], 0
    while idle < 4:
        m = c.poll(0.5)
        if m is None or m.error():
            idle += 1
            continue
        rows.append(orjson.loads(m.value()))
    c.close()
    return rows


def phased_producer(settings):
    """2 s windows, 1 s watermark, 1 s checkpoints; returns produce(events, pause): sends to
    partition 0 (one ordered stream), then the collectors' tick, stamped with the phase's latest
    time, to every partition (no partition is ever idle: production's setting), and waits so the
    watermark catches up with the phase."""
    settings.speed_window_seconds = 2
    settings.speed_watermark_seconds = 1
    settings.speed_checkpoint_seconds = 1
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    ticker = Ticker(settings)

    def produce(events, pause=2.5):
        for e in events:
            producer.produce(settings.raw_topic, orjson.dumps(e), e["site"].encode(), partition=0)
        assert producer.flush(10) == 0
        ticker.tick(max(e["ts"] for e in events))
        assert ticker.producer.flush(10) == 0
        time.sleep(pause)  # watermarks are emitted periodically: let it catch up with this phase

    return produce


def assert_each_window_once(rows_for, expected: dict[int, list[dict]]) -> None:
    """Each window's committed rows count its events exactly, and no row comes twice (a restart
    that replayed a committed window would repeat its rows). ``rows_for(window)``: the rows."""
    for window, events in expected.items():
        rows = rows_for(window)
        assert sum(r["events"] for r in rows) == len(events), f"window {window}: {rows}"
        keys = [tuple(v for k, v in r.items() if k not in ("pageviews", "events", "visitors_hll")) for r in rows]
        assert len(keys) == len(set(keys))  # every row exactly once


def start_speed(settings, tmp_path, produce) -> Service:
    """Start `pixel speed` and return once it provably processes events (a warm-up window)."""
    speed = Service("speed", settings, tmp_path).start()
    produce([event(0, T0 - 100_000, "warm.example"), event(1, T0 - 90_000, "warm.example")], pause=0)
    wait_until(
        lambda: any(r["site"] == "warm.example" for r in read_agg(settings)),
        120,
        message=f"speed layer running; log: {speed.log()[-2000:]}",
    )
    return speed


def test_windows_are_exact_and_visitors_within_sketch_error(settings, broker, tmp_path):
    produce = phased_producer(settings)
    settings.bot_user_agents = list(RULES.bot_user_agents)  # the job binds them into its UDF

    speed = start_speed(settings, tmp_path, produce)
    try:
        w0 = [event(i, T0 + i * 40, "a.example") for i in range(40)]  # 40 pageviews in [T0, T0+1.6s)
        w0 += [dict(w0[3]), dict(w0[7])]  # exact duplicates (same event_id): count once
        w0 += [event(100, T0 + 500, "a.example", eid="retry-1"), event(101, T0 + 900, "a.example", eid="retry-1")]
        w0 += [event(200 + i, T0 + 100 * i, "a.example", ua=BOT) for i in range(6)]  # bots
        w0 += [event(250 + i, T0 + 100 * i, "a.example", ua=KIOSK) for i in range(3)]  # bots by the rule
        w0 += [event(300, T0 + 10, "", url="https://nowhere/")]  # invalid: no site
        w1 = [event(i, T0 + WINDOW + i * 50, "b.example") for i in range(20)]
        w1.insert(5, event(41, T0 + 1900, "a.example"))  # out of order, within the 1 s watermark
        w2 = [event(500, T0 + 5500, "a.example")]  # watermark -> T0+4.5s: W0 and W1 close
        late = [event(42, T0 + 1000, "a.example"), event(43, T0 + 3000, "b.example")]  # later than it
        w2 += [event(501 + i, T0 + 4000 + i * 100, "b.example") for i in range(10)]
        flush = [event(999, T0 + 30_000, "a.example")]  # closes W2; its own window never closes

        produce(w0)
        produce(w1)
        produce(w2[:1])
        produce(late)
        produce(w2[1:])
        produce(flush, pause=0)
        counted = w0 + w1 + w2
        expected = expected_rows(counted, RULES)
        windows = {T0, T0 + WINDOW, T0 + 2 * WINDOW}

        def got_all():
            rows = [r for r in read_agg(settings) if r["window_start"] in windows]
            return rows if set(expected) <= set(per_dimension(rows)) else None

        rows = wait_until(got_all, 90, interval=1, message="all three windows in pixel.agg")
    finally:
        speed.kill()

    got = per_dimension(rows)
    assert got == expected  # exact: no duplicate, no bot, no late event, nothing missing
    # Anchors counted by hand: 40 + 1 out-of-order + 1 retried eid (2 hits) in W0 for a.example;
    # exact duplicates counted once; 6 listed bots' + 3 kiosk hits on their own; late events nowhere.
    assert got[(T0, "a.example", "total", "")] == 42
    assert got[(T0, "a.example", BOTS, "")] == 9
    assert got[(T0 + WINDOW, "b.example", "total", "")] == 20
    assert got[(T0 + 2 * WINDOW, "b.example", "total", "")] == 10

    assert all(r["pageviews"] == r["events"] for r in rows if not r["is_bot"])  # every event here is a pageview
    for window, site in {(r["window_start"], r["site"]) for r in rows}:
        humans = [
            e for e in counted if e["site"] == site and e["ua"] not in BOTS_UAS and e["ts"] // WINDOW * WINDOW == window
        ]
        exact = len({e["visitor_id"] for e in humans})
        sketches = [
            r["visitors_hll"] for r in rows if (r["window_start"], r["site"]) == (window, site) and not r["is_bot"]
        ]
        assert abs(estimate(sketches) - exact) <= max(1, 3 * RELATIVE_ERROR * exact)

    # The same output, consumed into the embedded real-time store, answers the same numbers.
    store = DuckDBStore()
    ingestor = AggIngestor(settings, store)
    thread = threading.Thread(target=ingestor.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: ingestor.ingested >= len(read_agg(settings)), 60, message="store caught up")
    finally:
        ingestor.stop()
        thread.join(10)
    minute = (T0, T0 + 60_000)  # all three windows are in this minute
    for site in ("a.example", "b.example"):
        assert store.totals(site, *minute).pageviews == sum(
            n for (w, s_, d, _v), n in expected.items() if s_ == site and d == "total"
        )
        for dim in ("page", "source", "browser", "os", "device"):
            want = defaultdict(int)
            for (_w, s_, d, v), n in expected.items():
                if s_ == site and d == dim:
                    want[v] += n
            got_top = {r.value: r.count.events for r in store.top(site, dim, *minute, limit=100)}
            assert got_top == dict(want), (site, dim)
        humans = {
            e["visitor_id"]
            for e in counted
            if e["site"] == site and e["ua"] not in BOTS_UAS and enrich_event(e)[1] is None
        }
        assert abs(store.totals(site, *minute).visitors - len(humans)) <= max(1, 3 * RELATIVE_ERROR * len(humans))


def test_killed_job_resumes_from_its_checkpoint_without_loss_or_double_count(settings, broker, tmp_path):
    produce = phased_producer(settings)

    def rows_for(window):
        return [r for r in read_agg(settings) if r["window_start"] == window]

    w0 = [event(i, T0 + i * 40, "a.example") for i in range(30)]
    # Up to T0+3.4s: the watermark (-1 s) passes W0's end, so W0 closes; W1 stays open.
    w1_before = [event(100 + i, T0 + WINDOW + i * 100, "a.example") for i in range(15)]
    w1_after = [event(200 + i, T0 + WINDOW + 1500 + i * 40, "a.example") for i in range(10)]
    speed = start_speed(settings, tmp_path, produce)
    try:
        produce(w0)
        produce(w1_before)  # watermark passes W0: W0 is emitted; W1 is half full in state
        wait_until(lambda: rows_for(T0), 120, interval=1, message=f"W0 emitted; log: {speed.log()[-1500:]}")
        time.sleep(3)  # a few checkpoints hold W1's partial state and the source offsets
        speed.kill()  # SIGKILL: Python driver and its JVM, mid-window
        speed = Service("speed", settings, tmp_path).start()
        assert "resuming from checkpoint" in wait_until(
            lambda: "resuming from checkpoint" in speed.log() and speed.log(), 60, message="restore"
        )
        produce(w1_after)
        produce([event(999, T0 + 30_000, "a.example")], pause=0)  # closes W1
        wait_until(lambda: rows_for(T0 + WINDOW), 120, interval=1, message="W1 emitted after restart")
        time.sleep(3)
    finally:
        speed.kill()

    assert_each_window_once(rows_for, {T0: w0, T0 + WINDOW: w1_before + w1_after})


def test_a_backlog_on_every_partition_is_counted_whole(settings, broker, tmp_path):
    """Events waiting on all partitions when the job starts (a restart after downtime, or a burst):
    no partition may be taken for idle while another is read, or its events would be dropped as
    late. With Flink's 1 s idle timeout this lost whole partitions' windows (bench/speed_layer.py)."""
    produce = phased_producer(settings)
    settings.speed_window_seconds = 10
    # The whole backlog fits librdkafka's queue (its default, 100k messages, would not).
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 20, "queue.buffering.max.messages": 200_000}
    )
    sites = [f"s{i}.example" for i in range(16)]
    n = 120_000
    for i in range(n):  # 20 s of event time, every site on its own key (so on several partitions)
        site = sites[i % len(sites)]
        producer.produce(settings.raw_topic, orjson.dumps(event(i, T0 + i // 6, site)), site.encode())
        if i % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0
    speed = Service("speed", settings, tmp_path).start()
    try:
        produce([event(n, T0 + 40_000, "end.example")], pause=0)  # closes both 10 s windows
        windows = {T0, T0 + 10_000}

        def both_windows():
            rows = [r for r in read_agg(settings) if r["window_start"] in windows and r["site"] in sites]
            per_site = {(r["window_start"], r["site"]) for r in rows}
            return rows if len(per_site) == 2 * len(sites) else None

        rows = wait_until(both_windows, 240, interval=2, message=f"both windows; log: {speed.log()[-1500:]}")
        time.sleep(2)  # the windows' last rows commit together; read them all
        rows = [r for r in read_agg(settings) if r["window_start"] in windows and r["site"] in sites]
    finally:
        speed.kill()
    assert sum(r["events"] for r in rows) == n
    # The mini-cluster's own log is kept in the data dir (a stalled job's evidence).
    assert any("pixel-speed-layer" in f.read_text() for f in (settings.run_dir / "flink-log").glob("flink-*.log"))
    first = defaultdict(int)
    for r in rows:
        if r["window_start"] == T0:
            first[r["site"]] += r["pageviews"]
    assert dict(first) == {s: 60_000 // len(sites) for s in sites}


def test_parallelism_2_commits_every_window_of_a_steady_stream(settings, broker, tmp_path):
    """`pixel up` at parallelism 2: windows, checkpoints and commits every second for 40 s over
    every partition, and every window committed and counted exactly. With a transactional writer
    per subtask (PIXEL_SPEED_SINK_PARALLELISM=2) this fails: the embedded broker leaves a commit
    open within seconds (bench/tansu_transactions.py) and no later row becomes visible."""
    settings.speed_parallelism = 2
    settings.raw_partitions = 4
    sites = [f"p{i}.example" for i in range(16)]
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 20})
    warm_up = phased_producer(settings)
    settings.speed_window_seconds = 1  # the default: a commit with rows every second
    speed = start_speed(settings, tmp_path, warm_up)
    try:
        assert "parallelism 2 (1 writing)" in speed.log()
        n, started = 0, time.monotonic()
        while (elapsed := time.monotonic() - started) < 40:  # ~2,000 events/s, event time = wall time
            ts = T0 + int(elapsed * 1000)
            for _ in range(20):
                site = sites[n % len(sites)]
                producer.produce(settings.raw_topic, orjson.dumps(event(n, ts, site)), site.encode())
                n += 1
            producer.poll(0)
            time.sleep(0.01)
        assert producer.flush(30) == 0
        ticker = Ticker(settings)
        ticker.tick(T0 + 60_000)  # closes every window on every partition
        assert ticker.producer.flush(10) == 0

        def counted():
            return sum(r["events"] for r in read_agg(settings) if r["site"] in sites)

        wait_until(lambda: counted() == n, 120, interval=5, message=lambda: f"{counted()} of {n} events committed")
    finally:
        speed.kill()
    rows = [r for r in read_agg(settings) if r["site"] in sites]
    assert len({r["window_start"] for r in rows}) >= 40  # a window a second, each committed
