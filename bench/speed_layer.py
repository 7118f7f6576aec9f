"""Speed-layer benchmark, in one run on this machine:

1. Throughput: events/s through the PyFlink job (enrichment UDF, windows, HLL sketches,
   exactly-once sink) on a realistic mix at the default settings, against two runs in the same
   run: the same Kafka -> window -> Kafka job in plain Flink SQL without the Python UDFs (what
   SQL alone costs), and the job with 10 s windows, 5 s watermark and 5 s checkpoints (what
   freshness costs: the former defaults). Steady state: --warmup events go through the running job first (start-up and JIT
   compilation excluded), then the clock runs from the first produced event to the last window
   committed on pixel.agg. Every event must be counted in the committed windows, or the run
   fails (a rate over dropped events would measure nothing). Baseline and job alternate for
   --rounds rounds; medians are reported (this box's speed drifts within minutes).
   --breakdown adds the job's parts, each against the same baseline: the enrichment UDF alone
   (the baseline's shape fed by it), the job without its window deduplication, and the job
   without its sketch UDF (the LISTAGG'd ids in its place): what bounds the job's ratio.
2. Freshness: hits sent to the collector at a fixed rate; for each hit, the time until the
   embedded real-time store counts it (collector -> tansu -> Flink -> pixel.agg -> DuckDB).
   p50/p95, at the default settings.

    .venv/bin/python bench/speed_layer.py [--events 1000000] [--warmup 200000] [--rounds 3] [--rate 1000] [--seconds 20]
                                          [--parallelism 2] [--breakdown]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import functools
import json
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import orjson  # noqa: E402
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402

from core.settings import Settings  # noqa: E402
from events.properties import LIVE_COLUMNS  # noqa: E402
from pixel.demo import PAGES, REFERRERS, USER_AGENTS  # noqa: E402
from pixel_api.ticker import Ticker  # noqa: E402
from serving.realtime.duckdb_store import DuckDBStore  # noqa: E402
from serving.realtime.ingest import AggIngestor  # noqa: E402
from tests.harness import Broker, Service, make_settings  # noqa: E402

T0 = 1_795_507_200_000
PER_SECOND = 5000  # event-time density of the synthetic load
DEFAULTS = Settings()
# The timing settings of each throughput variant: (window, watermark, checkpoint) seconds.
AT_DEFAULTS = (DEFAULTS.speed_window_seconds, DEFAULTS.speed_watermark_seconds, DEFAULTS.speed_checkpoint_seconds)
SLOW_WINDOWS = (10, 5, 5)
# The same Kafka -> window -> Kafka shape without the Python UDFs: one row per window and site,
# its properties empty (what SQL alone costs).
SQL_ONLY_INSERT = (
    """
INSERT INTO agg
SELECT UNIX_TIMESTAMP(DATE_FORMAT(window_start, 'yyyy-MM-dd HH:mm:ss')) * 1000,
       UNIX_TIMESTAMP(DATE_FORMAT(window_end, 'yyyy-MM-dd HH:mm:ss')) * 1000, site, FALSE, """
    + ", ".join("''" for _ in LIVE_COLUMNS)
    + """,
       COUNT(DISTINCT event_id), COUNT(DISTINCT event_id), ''
FROM TABLE(TUMBLE(TABLE raw_events, DESCRIPTOR(rowtime), INTERVAL '{window}' SECOND))
GROUP BY window_start, window_end, site"""
)

# The job's parts (--breakdown): each variant rewrites the job's INSERT (or the baseline's).
DEDUP_SUBQUERY = re.compile(r"FROM \(\n  -- Window deduplication.*?\) WHERE rn = 1\n\)", re.S)
BREAKDOWN = {
    "enrich": "enrichment UDF only (the baseline's shape, fed by it)",
    "nodedup": "the job without window deduplication",
    "nosketch": "the job without the sketch UDF (LISTAGG'd ids instead)",
}


def variant_insert(query: str, job_insert: str, window_s: int) -> str:
    """The INSERT a throughput variant runs: "job" as it is, "sql" the plain baseline, or one of
    BREAKDOWN. Fails loudly when the job's SQL no longer has the part a variant removes."""
    if query == "job":
        return job_insert
    if query in ("sql", "enrich"):
        insert = SQL_ONLY_INSERT.format(window=window_s)
        if query == "enrich":
            insert = insert.replace("TABLE raw_events", "TABLE enriched").replace(
                "DISTINCT event_id", "DISTINCT dedupe_key"
            )
        return insert
    if query == "nodedup":
        plain = f"FROM TABLE(TUMBLE(TABLE enriched, DESCRIPTOR(rowtime), INTERVAL '{window_s}' SECOND))"
        insert = DEDUP_SUBQUERY.sub(lambda _: plain, job_insert)
    elif query == "nosketch":
        insert = job_insert.replace("hll_sketch(LISTAGG(visitor_id))", "LISTAGG(visitor_id)")
    else:
        raise ValueError(f"unknown throughput variant {query!r}")
    if insert == job_insert:
        raise RuntimeError(f"variant {query!r} no longer applies to the job's SQL: update bench/speed_layer.py")
    return insert


@functools.lru_cache(maxsize=2)  # the same events for every round (generating them takes a core-second per 30k)
def raw_events(n: int, seed: int, start_ts: int, per_second: int, prefix: str = "b") -> list[bytes]:
    rng = random.Random(seed)
    uas = [u for u, _ in USER_AGENTS]
    weights = [w for _, w in USER_AGENTS]
    refs = [r for r, _ in REFERRERS]
    out = []
    for i in range(n):
        site = f"site{rng.randrange(20)}.example"
        out.append(
            orjson.dumps(
                {
                    "v": 1,
                    "event_id": f"{prefix}{i}",
                    "ts": start_ts + i * 1000 // per_second,
                    "site": site,
                    "event": "pageview",
                    "url": f"https://{site}{rng.choice(PAGES)}",
                    "referrer": rng.choice(refs),
                    "ua": rng.choices(uas, weights)[0],
                    "ip_trunc": "203.0.113.0",
                    "visitor_id": f"v{rng.randrange(5000)}",
                    "uid": "",
                    "eid": "",
                    "lang": "en",
                    "dnt": False,
                }
            )
        )
    return out


class CommittedWindows:
    """Window starts committed on pixel.agg, read incrementally by one read_committed consumer
    (re-reading the topic on every check would steal CPU from the job being measured)."""

    def __init__(self, settings):
        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "group.id": f"b{time.time()}",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
            }
        )
        self.consumer.assign([TopicPartition(settings.agg_topic, p, 0) for p in range(settings.raw_partitions)])
        self.seen: set[int] = set()
        self.pageviews: dict[int, int] = {}  # window_start -> the window's human + bot hits, all sites

    def _read(self) -> int:
        """One poll; returns how many rows it read."""
        got = self.consumer.consume(10_000, timeout=0.25)
        for m in got:
            if not m.error():
                row = orjson.loads(m.value())
                self.seen.add(row["window_start"])
                # Every event of the window once: people's rows by property values, and bots'.
                self.pageviews[row["window_start"]] = self.pageviews.get(row["window_start"], 0) + row["events"]
        return len(got)

    def wait_for(self, window_start: int) -> None:
        while window_start not in self.seen:
            self._read()

    def drain(self, idle_polls: int = 8) -> None:
        """Read what is left: the windows already seen may have rows in partitions not read yet
        (a window's rows land on several partitions, committed together)."""
        idle = 0
        while idle < idle_polls:
            idle = 0 if self._read() else idle + 1

    def counted_since(self, start: int) -> int:
        return sum(n for window_start, n in self.pageviews.items() if window_start >= start)

    def close(self) -> None:
        self.consumer.close()


def close_windows(producer: Producer, ticker: Ticker, ts: int) -> None:
    """After every event is delivered, a collector's tick stamped ts on every partition: the
    watermark passes every earlier window (no partition is idle; production's setting)."""
    producer.flush(60)
    ticker.tick(ts)
    ticker.producer.flush(10)


def last_window(start_ts: int, n: int, window_ms: int) -> int:
    """Start of the 10 s window holding the last of n events produced from start_ts."""
    return (start_ts + (n - 1) * 1000 // PER_SECOND) // window_ms * window_ms


def produce(producer: Producer, settings, values: list[bytes]) -> None:
    for i, value in enumerate(values):
        while True:
            try:
                producer.produce(settings.raw_topic, value, str(i % 20).encode())
                break
            except BufferError:
                producer.poll(0.01)


def throughput(
    n: int, query: str, tmp: Path, warmup: int = 0, timing: tuple[int, int, int] = AT_DEFAULTS, parallelism: int = 1
) -> float:
    from speed_layer.job import build

    tmp.mkdir(parents=True, exist_ok=True)
    name = f"{query}-{timing[0]}s-p{parallelism}"
    settings = make_settings(
        tmp / name,
        speed_window_seconds=timing[0],
        speed_watermark_seconds=timing[1],
        speed_checkpoint_seconds=timing[2],
        raw_partitions=4,
        speed_parallelism=parallelism,
        speed_group=f"bench-{name}",
    )
    window_ms = timing[0] * 1000
    broker = Broker(settings).start()
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "linger.ms": 20,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    try:
        t_env, insert = build(settings, restore=False)
        result = t_env.execute_sql(variant_insert(query, insert, settings.speed_window_seconds))
        committed = CommittedWindows(settings)
        ticker = Ticker(settings)
        # Warm-up: a first load through the running job (JIT-compiled code paths, filled caches),
        # in windows well before the timed ones, committed before the clock starts.
        warmup = max(warmup, 1)
        warm = raw_events(warmup, 2, T0 - 3_600_000, per_second=PER_SECOND, prefix="w")
        produce(producer, settings, warm)
        close_windows(producer, ticker, T0 - 60_000)
        committed.wait_for(last_window(T0 - 3_600_000, warmup, window_ms))
        events = raw_events(n, 1, T0, per_second=PER_SECOND)
        flush_ts = T0 + (n * 1000 // PER_SECOND) + 60_000
        started = time.perf_counter()
        produce(producer, settings, events)
        close_windows(producer, ticker, flush_ts)
        committed.wait_for(last_window(T0, n, window_ms))
        elapsed = time.perf_counter() - started
        committed.drain()
        committed.close()
        result.get_job_client().cancel().result()
        # Every event must be counted, or the rate measured something else (events dropped as late).
        counted = committed.counted_since(T0)
        if counted != n:
            raise RuntimeError(f"{counted:,} of {n:,} events counted: the run doesn't measure the whole load")
        return n / elapsed
    finally:
        broker.kill()


async def paced_hits(url: str, rate: int, seconds: int, workers: int = 32) -> list[float]:
    """Send rate*seconds hits at a fixed rate (a pacing loop feeds a bounded queue, workers send);
    returns each hit's send time, in the order the hits were paced."""
    ua = USER_AGENTS[0][0]
    sent: list[float] = [0.0] * (rate * seconds)
    queue: asyncio.Queue = asyncio.Queue(maxsize=workers * 2)

    async def worker(client: httpx.AsyncClient):
        while (i := await queue.get()) is not None:
            sent[i] = time.time()
            await client.get(
                "/p.gif",
                params={"site": "fresh.example", "url": f"https://fresh.example/p{i % 10}"},
                headers={"user-agent": ua},
            )

    async with httpx.AsyncClient(
        base_url=url, timeout=10, limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    ) as client:
        tasks = [asyncio.create_task(worker(client)) for _ in range(workers)]
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(rate * seconds):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await queue.put(i)
        for _ in tasks:
            await queue.put(None)
        await asyncio.gather(*tasks)
    return sorted(sent)


def freshness(rate: int, seconds: int, tmp: Path) -> tuple[list[float], int]:
    settings = make_settings(tmp / "fresh", raw_partitions=2)  # the speed layer's defaults
    broker = Broker(settings).start()
    speed = Service("speed", settings, tmp).start()
    collector = Service("collector", settings, tmp).start()
    store = DuckDBStore()
    ingestor = AggIngestor(settings, store)
    ingest_thread = threading.Thread(target=ingestor.run, daemon=True)
    ingest_thread.start()
    counted: list[tuple[float, int]] = []
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            now = time.time()
            counted.append((now, store.totals("fresh.example", 0, int(now * 1000) + 3_600_000).pageviews))
            time.sleep(0.05)

    try:
        # Warm-up: the job must be running before the clock starts.
        while store.totals("fresh.example", 0, 2**62).pageviews == 0:
            httpx.get(
                f"http://127.0.0.1:{settings.collector_port}/p.gif",
                params={"site": "fresh.example", "url": "https://fresh.example/warm"},
                headers={"user-agent": USER_AGENTS[0][0]},
            )
            time.sleep(1)
        time.sleep(3)
        base = store.totals("fresh.example", 0, 2**62).pageviews
        print("  job warm; sending", flush=True)
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        sent = asyncio.run(paced_hits(f"http://127.0.0.1:{settings.collector_port}", rate, seconds))
        print(f"  sent {len(sent)} hits", flush=True)
        # One more hit a few seconds later closes the last windows (the watermark needs events).
        time.sleep(2)
        httpx.get(
            f"http://127.0.0.1:{settings.collector_port}/p.gif",
            params={"site": "fresh.example", "url": "https://fresh.example/end"},
            headers={"user-agent": USER_AGENTS[0][0]},
        )
        deadline = time.time() + 30
        while time.time() < deadline and (not counted or counted[-1][1] - base < len(sent)):
            time.sleep(0.2)
        stop.set()
        poller.join()
        times = [t for t, _ in counted]
        counts = [c - base for _, c in counted]
        latencies = []
        for i, t_sent in enumerate(sent):
            k = bisect.bisect_left(counts, i + 1)  # first poll at which hit i was counted
            if k < len(times):
                latencies.append(times[k] - t_sent)
        return latencies, len(sent)
    finally:
        ingestor.stop()
        collector.stop()
        speed.kill()
        broker.kill()


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument(
        "--warmup", type=int, default=200_000, help="events through the running job before the clock starts"
    )
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3, help="throughput runs of baseline and job, alternating")
    ap.add_argument("--skip-throughput", action="store_true", help="only measure freshness")
    ap.add_argument(
        "--parallelism", type=int, nargs="*", default=[], help="also run the job at these parallelisms (e.g. 2)"
    )
    ap.add_argument(
        "--breakdown", action="store_true", help="also run the job's parts: " + "; ".join(BREAKDOWN.values())
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        # The job and its baselines alternate, round after round: this box's speed drifts by 2x
        # within minutes, so each job run has its baselines beside it; medians are reported.
        # (label, key in runs, query, timing[, parallelism])
        variants = [
            ("plain Flink SQL baseline (default windows)", "sql", "sql", AT_DEFAULTS),
            ("speed layer job at the defaults", "udf", "job", AT_DEFAULTS),
            ("speed layer job, 10 s windows / 5 s watermark / 5 s checkpoints", "slow", "job", SLOW_WINDOWS),
            *((f"speed layer job at parallelism {p}", f"p{p}", "job", AT_DEFAULTS, p) for p in args.parallelism),
            *((label, key, key, AT_DEFAULTS) for key, label in BREAKDOWN.items() if args.breakdown),
        ]
        runs: dict[str, list[float]] = {key: [] for _, key, *_ in variants}
        for r in range(0 if args.skip_throughput else args.rounds):
            for label, key, query, timing, *parallelism in variants:
                print(f"throughput, round {r + 1}/{args.rounds}: {label} ...", flush=True)
                runs[key].append(throughput(args.events, query, tmp / f"r{r}", args.warmup, timing, *parallelism))
                print(f"  {runs[key][-1]:,.0f} events/s", flush=True)
        rate = {k: statistics.median(v) if v else float("nan") for k, v in runs.items()}
        ratio = {
            k: statistics.median(u / b for u, b in zip(runs["udf"], runs[k])) if runs["udf"] else float("nan")
            for k in ("sql", "slow", *(f"p{p}" for p in args.parallelism))
        }
        # Each part against the plain SQL of its round (higher = cheaper).
        parts = {
            k: statistics.median(v / b for v, b in zip(runs[k], runs["sql"])) if runs[k] else float("nan")
            for k in ("udf", *(BREAKDOWN if args.breakdown else ()))
        }
        print(f"freshness at {args.rate} hits/s for {args.seconds}s ...", flush=True)
        lat, sent = freshness(args.rate, args.seconds, tmp)
    timing = "{}s windows, {}s watermark, {}s checkpoints".format(*AT_DEFAULTS)
    listed = lambda key: ", ".join(f"{r:,.0f}" for r in runs[key])  # noqa: E731
    print(f"\nDefaults: {timing}.\n")
    print("| measure | speed layer at the defaults | baseline (same run) | ratio / target |")
    print("|---|---|---|---|")
    print(
        f"| events/s through the job ({args.events:,} events after {args.warmup:,} warm-up, all counted; "
        f"median of {args.rounds}) | {rate['udf']:,.0f} (runs: {listed('udf')}) | plain Flink SQL, no UDFs: "
        f"{rate['sql']:,.0f} (runs: {listed('sql')}) | {ratio['sql']:.2f}x |"
    )
    print(
        f"| events/s: the cost of fresh windows | {rate['udf']:,.0f} | the job with 10 s windows, 5 s watermark, "
        f"5 s checkpoints: {rate['slow']:,.0f} (runs: {listed('slow')}) | {ratio['slow']:.2f}x |"
    )
    for p in args.parallelism:
        print(
            f"| events/s at parallelism {p} (this box: 2 cores) | {rate[f'p{p}']:,.0f} (runs: {listed(f'p{p}')}) "
            f"| the job at parallelism 1: {rate['udf']:,.0f} | {1 / ratio[f'p{p}']:.2f}x |"
        )
    print(f"| freshness p50 (hit -> counted in store) | {pct(lat, 0.5):.2f} s | - | - |")
    print(f"| freshness p95 | {pct(lat, 0.95):.2f} s | - | target <= 5 s |")
    print(f"| hits counted / sent | {len(lat):,} / {sent:,} | | |")
    if args.breakdown:
        print("\n| variant | events/s (median; runs) | / plain SQL, same round (median) |")
        print("|---|---|---|")
        print(f"| plain Flink SQL, no UDFs | {rate['sql']:,.0f} ({listed('sql')}) | 1 |")
        for key, label in {"udf": "the job", **BREAKDOWN}.items():
            print(f"| {label} | {rate[key]:,.0f} ({listed(key)}) | {parts[key]:.2f}x |")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "speed_layer.json").write_text(
        json.dumps(
            {
                "args": vars(args),
                "defaults": dict(zip(("window_s", "watermark_s", "checkpoint_s"), AT_DEFAULTS)),
                "events_per_s": rate["udf"],
                "sql_only_events_per_s": rate["sql"],
                "slow_windows_events_per_s": rate["slow"],
                "runs": runs,
                "ratio_to_sql_median": ratio["sql"],
                "ratio_to_slow_windows_median": ratio["slow"],
                "parallelism_events_per_s": {p: rate[f"p{p}"] for p in args.parallelism},
                "breakdown_ratio_to_sql_median": parts if args.breakdown else None,
                "freshness_p50_s": pct(lat, 0.5),
                "freshness_p95_s": pct(lat, 0.95),
                "counted": len(lat),
                "sent": sent,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
