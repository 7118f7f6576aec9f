"""Lander benchmark: events/s one `pixel lander` process lands (real tansu broker, local raw
store, default flush settings), against a plain consumer reading the same backlog in the same
run (what consuming alone costs: the ceiling for any lander on this broker).

A backlog of realistic raw events (the demo's traffic model) waits on pixel.raw's partitions;
the lander starts, and the clock runs from its first landed event to the last (start-up is
excluded; its metrics endpoint is polled). Every event must land, or the run fails. Writes
bench/results/lander.json.

    .venv/bin/python bench/lander.py [--events 500000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402

from bench.speed_layer import produce, raw_events  # noqa: E402
from tests.harness import Broker, Service, free_port, make_settings  # noqa: E402

T0 = int(time.time() * 1000) - 3_600_000  # an hour ago: today's folders, within retention


def backlog(settings, events: list[bytes]) -> None:
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 20, "queue.buffering.max.messages": 1_000_000}
    )
    produce(producer, settings, events)
    assert producer.flush(60) == 0


def landed(port: int) -> int:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return 0
    match = re.search(r"^pixel_lander_events_total (\S+)", text, re.M)
    return int(float(match[1])) if match else 0


def lander_rate(settings, n: int, tmp: Path) -> float:
    settings.lander_metrics_port = free_port()
    lander = Service("lander", settings, tmp).start()
    try:
        while (first := landed(settings.lander_metrics_port)) == 0:
            time.sleep(0.01)
        started = time.perf_counter()
        deadline = time.monotonic() + 600
        while (count := landed(settings.lander_metrics_port)) < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{count:,} of {n:,} events landed in 10 min; log: {lander.log()}")
            time.sleep(0.05)
        return (n - first) / (time.perf_counter() - started)
    finally:
        lander.stop()


def consume_rate(settings, n: int) -> float:
    """A plain consumer (no group, assigned every partition) reading the n events, nothing else."""
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"bench{time.time()}", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(settings.raw_topic, p, 0) for p in range(settings.raw_partitions)])
    got = 0
    while got == 0:
        got += sum(1 for m in consumer.consume(1, timeout=1) if not m.error())
    started = time.perf_counter()
    first = got
    while got < n:
        got += sum(1 for m in consumer.consume(5000, timeout=1) if not m.error())
    elapsed = time.perf_counter() - started
    consumer.close()
    return (n - first) / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=500_000)
    ap.add_argument("--rounds", type=int, default=2, help="rounds of lander and baseline, alternating")
    args = ap.parse_args()
    events = raw_events(args.events, 1, T0, per_second=max(1, args.events // 3000))
    runs: dict[str, list[float]] = {"lander": [], "consume": []}
    with tempfile.TemporaryDirectory() as tmpdir:
        for r in range(args.rounds):
            tmp = Path(tmpdir) / f"r{r}"
            tmp.mkdir()
            settings = make_settings(tmp / "data", raw_partitions=4, lander_flush_seconds=2.0)
            broker = Broker(settings).start()
            try:
                print(f"round {r + 1}/{args.rounds}: backlog of {args.events:,} events ...", flush=True)
                backlog(settings, events)
                runs["consume"].append(consume_rate(settings, args.events))
                print(f"  plain consumer: {runs['consume'][-1]:,.0f} events/s", flush=True)
                runs["lander"].append(lander_rate(settings, args.events, tmp))
                print(f"  pixel lander: {runs['lander'][-1]:,.0f} events/s", flush=True)
            finally:
                broker.kill()
    rate = {k: statistics.median(v) for k, v in runs.items()}
    ratio = statistics.median(a / b for a, b in zip(runs["lander"], runs["consume"]))
    print("\n| measure | pixel lander (1 process) | baseline (same run) | ratio |")
    print("|---|---|---|---|")
    print(
        f"| events/s landed ({args.events:,}-event backlog, 4 partitions; median of {args.rounds}) "
        f"| {rate['lander']:,.0f} | plain consumer, no landing: {rate['consume']:,.0f} | {ratio:.2f}x |"
    )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "lander.json").write_text(
        json.dumps({"args": vars(args), "events_per_s": rate["lander"], "consume_per_s": rate["consume"], "runs": runs})
    )


if __name__ == "__main__":
    main()
