"""Hand-off benchmark: CPU the collector spends per event after the request handler returned
(pixel_api.handoff: produce to Kafka, the delivery report, retain-until-landed, the metrics),
against a plain confluent-kafka producer sending the same events in the same run (no delivery
callback, nothing retained: what handing an event to librdkafka costs at the least).

Both run in this process against a real tansu broker, with the collector's producer settings;
the clock is this process's CPU time (every thread, librdkafka's included) from the first event
to the last one delivered. The hand-off's thread shares the GIL with the request handlers, so
each microsecond here is one the collector's event loop can't serve a hit in. Writes
bench/results/handoff.json.

    .venv/bin/python bench/handoff.py [--events 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from confluent_kafka import Producer  # noqa: E402

from bench.speed_layer import raw_events  # noqa: E402
from pixel_api.delivery import producer_config  # noqa: E402
from pixel_api.handoff import HandOff  # noqa: E402
from tests.harness import Broker, make_settings  # noqa: E402

T0 = 1_795_507_200_000


def handoff_cpu(handoff: HandOff, topic: str, events: list[bytes]) -> float:
    """CPU seconds per event, from the first submit to the last one delivered."""
    started = time.process_time()
    for i, value in enumerate(events):
        handoff.submit(topic, b"site.example", value)
        handoff.tallies.latencies.append(1e-5)  # what the request handler adds per hit
        if i % 1000 == 999:
            time.sleep(0.0005)  # hits arrive over time, not all in one step
    if not handoff.wait_idle(120):
        raise RuntimeError("the hand-off did not deliver the events within 120 s")
    return (time.process_time() - started) / len(events)


def plain_cpu(settings, events: list[bytes]) -> float:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, **producer_config(settings)})
    started = time.process_time()
    for i, value in enumerate(events):
        producer.produce(settings.raw_topic, value, b"site.example")
        if i % 1000 == 999:
            producer.poll(0)
            time.sleep(0.0005)
    if producer.flush(120):
        raise RuntimeError("the plain producer did not deliver the events within 120 s")
    return (time.process_time() - started) / len(events)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3, help="runs of baseline and hand-off, alternating")
    args = ap.parse_args()
    events = raw_events(args.events, 1, T0, per_second=5000)
    runs: dict[str, list[float]] = {"plain": [], "handoff": []}
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(Path(tmp))  # the collector's defaults: retain-until-landed on
        broker = Broker(settings).start()
        try:
            for r in range(args.rounds):
                print(f"round {r + 1}/{args.rounds} ...", flush=True)
                runs["plain"].append(plain_cpu(settings, events))
                # A new hand-off each round: no lander confirms here, so what it retains grows
                # with every event, and past its cap (retain_max_events) it would evict.
                handoff = HandOff(settings)
                handoff.start()
                handoff_cpu(handoff, settings.raw_topic, events[:20_000])  # warm-up: connections
                runs["handoff"].append(handoff_cpu(handoff, settings.raw_topic, events))
                handoff.stop(wait_landed_s=0)
        finally:
            broker.kill()
    us = {k: statistics.median(v) * 1e6 for k, v in runs.items()}
    listed = lambda k: ", ".join(f"{v * 1e6:.2f}" for v in runs[k])  # noqa: E731
    print(f"\n{args.events:,} events, median of {args.rounds} rounds (CPU us per event, every thread)\n")
    print("| path | CPU us per event | runs |")
    print("|---|---|---|")
    print(f"| plain producer (baseline) | {us['plain']:.2f} | {listed('plain')} |")
    print(f"| collector hand-off | {us['handoff']:.2f} | {listed('handoff')} |")
    print(f"\nhand-off / plain producer = {us['handoff'] / us['plain']:.2f}x")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "handoff.json").write_text(json.dumps({"args": vars(args), "cpu_us_per_event": us, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
