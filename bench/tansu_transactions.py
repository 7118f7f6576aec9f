"""Minimal case: the embedded broker (tansu 0.6) and concurrent transactional writers.

Flink's exactly-once Kafka sink, played by plain librdkafka producers (no Flink): each writer
produces into a transaction without pause; at every checkpoint (all writers at once) it flushes
that transaction, begins the next one on a new producer (a new transactional id, hence a new
producer id, as the sink's pool does) and commits the flushed one while the next is being
written. Every commit must succeed. Then a read_committed and a read_uncommitted reader count the
topic: both must see every record.

With one writer they do. With two writers on the same partitions, tansu now and then acknowledges
a commit but leaves that transaction open: the partition's last stable offset stops there, and
read_committed readers (the stores) never see anything after it. This is why the speed layer has
one transactional writer by default (PIXEL_SPEED_SINK_PARALLELISM).

    .venv/bin/python bench/tansu_transactions.py [--writers 1 2] [--checkpoints 100] [--rounds 2]
"""

from __future__ import annotations

import argparse
import queue
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402

from tests.harness import Broker, make_settings  # noqa: E402

PARTITIONS = 4
RECORD = b"r" * 200  # about a pixel.agg row


def transactional_producer(bootstrap: str, transactional_id: str) -> Producer:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": transactional_id,
            # The speed job's sink settings (speed_layer/sql.py).
            "linger.ms": 50,
            "batch.size": 1_048_576,
            "compression.type": "lz4",
        }
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    return producer


def writer(bootstrap: str, topic: str, k: int, checkpoints: int, interval: float, barrier, sent: list[int]) -> None:
    """One sink writer: a transaction per checkpoint interval, committed by a committer thread
    while the next transaction is written."""
    to_commit: queue.Queue = queue.Queue()

    def committer():
        while (producer := to_commit.get()) is not None:
            producer.commit_transaction(30)

    committing = threading.Thread(target=committer)
    committing.start()
    current = transactional_producer(bootstrap, f"bench-w{k}-0")
    for checkpoint in range(1, checkpoints + 1):
        deadline = time.monotonic() + interval
        i = 0
        while time.monotonic() < deadline:
            try:
                current.produce(topic, RECORD, partition=i % PARTITIONS)
                sent[k] += 1
                i += 1
            except BufferError:
                current.poll(0.001)
            if i % 50 == 0:
                current.poll(0)
                time.sleep(0.001)
        current.flush(30)
        barrier.wait()  # the checkpoint reaches every writer at once
        to_commit.put(current)
        current = transactional_producer(bootstrap, f"bench-w{k}-{checkpoint}")
    current.commit_transaction(30)
    to_commit.put(None)
    committing.join()


def count(bootstrap: str, topic: str, isolation: str) -> int:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"count-{isolation}", "isolation.level": isolation}
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    n = idle = 0
    while idle < 6:
        got = consumer.consume(100_000, timeout=0.5)
        n += sum(1 for m in got if not m.error())
        idle = 0 if got else idle + 1
    consumer.close()
    return n


def run(writers: int, checkpoints: int, interval: float, tmp: Path) -> tuple[int, int, int]:
    """(sent, visible to read_committed, visible to read_uncommitted) on a fresh broker."""
    settings = make_settings(tmp, raw_partitions=PARTITIONS)
    broker = Broker(settings).start()
    try:
        topic, bootstrap = settings.agg_topic, settings.kafka_bootstrap
        sent = [0] * writers
        barrier = threading.Barrier(writers)
        threads = [
            threading.Thread(target=writer, args=(bootstrap, topic, k, checkpoints, interval, barrier, sent))
            for k in range(writers)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sum(sent), count(bootstrap, topic, "read_committed"), count(bootstrap, topic, "read_uncommitted")
    finally:
        broker.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--writers", type=int, nargs="+", default=[1, 2], help="writer counts to run (default: 1 2)")
    ap.add_argument("--checkpoints", type=int, default=100, help="transactions per writer (default: 100)")
    ap.add_argument("--interval", type=float, default=0.3, help="seconds between checkpoints (default: 0.3)")
    ap.add_argument("--rounds", type=int, default=2, help="runs of each writer count, alternating (default: 2)")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for writers in args.writers:
                sent, committed, uncommitted = run(
                    writers, args.checkpoints, args.interval, Path(tmp) / f"{r}-{writers}"
                )
                print(f"  round {r + 1}, {writers} writer(s): {sent:,} sent, {committed:,} committed", flush=True)
                rows.append((r + 1, writers, sent, committed, uncommitted))
    print("\n| round | writers | records sent | read_committed sees | read_uncommitted sees |")
    print("|---:|---:|---:|---:|---:|")
    for r, writers, sent, committed, uncommitted in rows:
        seen = f"{committed:,}" if committed == sent else f"{committed:,} ({committed / sent:.0%})"
        print(f"| {r} | {writers} | {sent:,} | {seen} | {uncommitted:,} |")


if __name__ == "__main__":
    main()
