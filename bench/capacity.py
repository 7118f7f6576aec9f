"""Capacity model: how many cores, partitions, files, bytes and rows a traffic size needs, from
the per-core rates the benchmarks measured on this box (their last runs, bench/results/):

    collector req/s per worker        bench/collector_http.py --workers 1   (and --workers 2)
    lander events/s per process       bench/lander.py
    speed layer events/s per slot     bench/speed_layer.py
    batch events/s per core           bench/batch.py          (local[2]: its rate / 2)
    store load events/s, API queries  bench/serving_store.py

Prints the rates it read, then the sizing for 10M, 1B and 10B events a day (peak = average x
--peak-factor) and for peaks of 50k and 500k requests/s (a day = peak / factor x 86,400 s), and
what runs out first at each size. Stages are sized for the peak where they must keep up with
the stream (collector, lander, speed layer), for the day where they work on a closed day (the
nightly job within --batch-hours, the store's load).

    .venv/bin/python bench/capacity.py [--peak-factor 3] [--batch-hours 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.collector_http import COLLECTOR  # noqa: E402  (its results' label)

RESULTS = ROOT / "bench" / "results"
SIZES = [("10M/day", 10e6, None), ("1B/day", 1e9, None), ("10B/day", 10e9, None)]
PEAKS = [("peak 50k/s", None, 50e3), ("peak 500k/s", None, 500e3)]
# What the rates can't tell, stated: a Kafka partition carries up to this many events/s (~4 MB/s
# of ~400-byte events, well inside a broker disk's and a consumer's reach); a speed-layer slot
# (its JVM task and Python worker) used both cores of the 2-core box it was measured on.
PARTITION_EVENTS_PER_S = 10_000
CORES_PER_SLOT = 2
BOX_CORES = 2
LANDER_FLUSH_EVENTS, LANDER_FLUSH_SECONDS = 20_000, 2.0  # the lander's defaults (core.settings)


@dataclass(frozen=True)
class Rates:
    collector_per_worker: float  # requests/s
    collector_two_workers: float | None
    lander: float  # events/s per process
    speed_per_slot: float  # events/s
    batch_per_core: float  # raw events/s
    raw_bytes_per_event: float  # gzip JSON lines, as landed
    clean_fraction: float  # clean events / raw lines (the store's rows)
    store_load: float  # events/s into the embedded store
    api_per_core: float  # queries/s (1 / the median p50)
    broker_read: float  # events/s a plain consumer reads from the embedded broker


class Missing(RuntimeError):
    pass


def _read(name: str, command: str) -> dict | list:
    path = RESULTS / name
    if not path.exists():
        raise Missing(f"no {path.relative_to(RESULTS.parent.parent)}: run `.venv/bin/python {command}` first")
    return json.loads(path.read_text())


def measured_rates() -> Rates:
    one = _read("collector_http-w1.json", "bench/collector_http.py --workers 1")
    two = RESULTS / "collector_http-w2.json"
    lander = _read("lander.json", "bench/lander.py")
    speed = _read("speed_layer.json", "bench/speed_layer.py")
    batch = max(_read("batch.json", "bench/batch.py"), key=lambda r: r["events"])
    store = _read("serving_store.json", "bench/serving_store.py")
    p50s = [q["p50"] for label, q in store["latency_ms"].items() if "healthz" not in label]
    if "raw_bytes" not in batch:
        raise Missing("bench/results/batch.json predates raw sizes: run `.venv/bin/python bench/batch.py` again")
    return Rates(
        collector_per_worker=one["results"][COLLECTOR]["rps"],
        collector_two_workers=json.loads(two.read_text())["results"][COLLECTOR]["rps"] if two.exists() else None,
        lander=lander["events_per_s"],
        speed_per_slot=speed["events_per_s"],
        batch_per_core=batch["spark_eps"] / 2,
        raw_bytes_per_event=batch["raw_bytes"] / batch["raw_lines"],
        clean_fraction=batch["clean"] / batch["raw_lines"],
        store_load=store["load_events_per_s"],
        api_per_core=1000 / statistics.median(p50s),
        broker_read=lander["consume_per_s"],
    )


@dataclass(frozen=True)
class Sizing:
    name: str
    events_per_day: float
    peak_per_s: float
    collector_cores: int
    lander_cores: int
    speed_slots: int
    speed_cores: int
    batch_cores: int
    partitions: int
    raw_bytes_per_day: float
    raw_files_landed: int
    raw_files_compacted: int
    store_rows_per_day: float
    store_load_hours: float
    runs_out_first: str


def size(name: str, per_day: float, peak: float, rates: Rates, batch_hours: float) -> Sizing:
    average = per_day / 86_400
    # The cores each stage keeps busy (fractions: at small sizes every stage idles on one box).
    busy = {
        "collector": peak / rates.collector_per_worker,
        "lander": peak / rates.lander,
        "speed layer": peak / rates.speed_per_slot * CORES_PER_SLOT,
        "nightly batch": per_day / (rates.batch_per_core * batch_hours * 3600),
    }
    collector, lander, batch = (math.ceil(busy[k]) for k in ("collector", "lander", "nightly batch"))
    slots = math.ceil(busy["speed layer"] / CORES_PER_SLOT)
    partitions = max(math.ceil(peak / PARTITION_EVENTS_PER_S), lander, slots, 1)
    per_partition = average / partitions
    # A partition's batch is flushed at 20,000 events or when 2 s old: below 10,000 events/s a
    # partition, a file every 2 s (while traffic lasts); compaction leaves one per partition and hour.
    if per_partition * LANDER_FLUSH_SECONDS >= LANDER_FLUSH_EVENTS:
        files_per_partition = per_partition * 86_400 / LANDER_FLUSH_EVENTS
    else:
        files_per_partition = min(per_partition * 86_400, 86_400 / LANDER_FLUSH_SECONDS)
    store_rows = per_day * rates.clean_fraction
    load_hours = store_rows / rates.store_load / 3600
    busiest = max(busy, key=busy.get)
    if peak > rates.broker_read:
        first = f"the embedded broker (one tansu reads {rates.broker_read:,.0f}/s): Kafka, {partitions} partitions"
    elif sum(busy.values()) <= BOX_CORES:
        first = (
            f"nothing: every stage on one {BOX_CORES}-core box keeps {sum(busy.values()):.2f} cores busy (`pixel up`)"
        )
    else:
        first = (
            f"the {busiest} ({busy[busiest]:,.1f} busy cores of {sum(busy.values()):,.1f}) on one {BOX_CORES}-core box"
        )
    if load_hours > 2:
        first += f"; the embedded store ({load_hours:,.1f} h/day to load): Druid"
    return Sizing(
        name,
        per_day,
        peak,
        collector,
        lander,
        slots,
        slots * CORES_PER_SLOT,
        batch,
        partitions,
        per_day * rates.raw_bytes_per_event,
        round(files_per_partition * partitions),
        partitions * 24,
        store_rows,
        load_hours,
        first,
    )


def _count(value: float) -> str:
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:,.1f}{unit}"
    return f"{value:,.0f}"


def _bytes(value: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if value >= scale:
            return f"{value / scale:,.1f} {unit}"
    return f"{value / 1e3:,.0f} kB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peak-factor", type=float, default=3.0, help="peak / average request rate (default 3)")
    ap.add_argument("--batch-hours", type=float, default=2.0, help="the nightly run must close a day in this long")
    ap.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = ap.parse_args()
    try:
        rates = measured_rates()
    except Missing as missing:
        sys.exit(str(missing))
    sizings = [
        size(name, per_day or peak / args.peak_factor * 86_400, peak or per_day / 86_400 * args.peak_factor, rates,
             args.batch_hours)
        for name, per_day, peak in SIZES + PEAKS
    ]  # fmt: skip
    if args.json:
        print(json.dumps({"rates": asdict(rates), "sizings": [asdict(s) for s in sizings]}, indent=1))
        return
    two = (
        f"; 2 workers: {rates.collector_two_workers:,.0f} ({rates.collector_two_workers / rates.collector_per_worker:.2f}x)"
        if rates.collector_two_workers
        else ""
    )
    print("Rates measured on this box (bench/results/):\n")
    print("| stage | rate | unit |")
    print("|---|---:|---|")
    print(f"| collector | {rates.collector_per_worker:,.0f} | requests/s per worker{two} |")
    print(f"| lander | {rates.lander:,.0f} | events/s per process |")
    print(f"| speed layer | {rates.speed_per_slot:,.0f} | events/s per slot ({CORES_PER_SLOT} cores) |")
    print(f"| nightly batch | {rates.batch_per_core:,.0f} | raw events/s per core |")
    print(f"| store load | {rates.store_load:,.0f} | events/s (embedded store) |")
    print(f"| Stats API | {rates.api_per_core:,.0f} | queries/s per core (median p50) |")
    print(f"| raw data | {rates.raw_bytes_per_event:,.0f} | bytes per event (gzip JSON lines) |")
    print(f"\nSizing (peak = {args.peak_factor:g}x average; the nightly run within {args.batch_hours:g} h):\n")
    print("| | " + " | ".join(s.name for s in sizings) + " |")
    print("|---|" + "---:|" * len(sizings))
    rows = [
        ("events/day", lambda s: _count(s.events_per_day)),
        ("peak events/s", lambda s: _count(s.peak_per_s)),
        ("collector cores", lambda s: f"{s.collector_cores:,}"),
        ("lander cores", lambda s: f"{s.lander_cores:,}"),
        ("speed slots (cores)", lambda s: f"{s.speed_slots:,} ({s.speed_cores:,})"),
        ("nightly batch cores", lambda s: f"{s.batch_cores:,}"),
        ("Kafka partitions", lambda s: f"{s.partitions:,}"),
        ("raw bytes/day", lambda s: _bytes(s.raw_bytes_per_day)),
        ("raw files/day landed", lambda s: _count(s.raw_files_landed)),
        ("raw files/day compacted", lambda s: _count(s.raw_files_compacted)),
        ("store rows/day", lambda s: _count(s.store_rows_per_day)),
        ("embedded store load h/day", lambda s: f"{s.store_load_hours:,.2f}"),
    ]
    for label, cell in rows:
        print(f"| {label} | " + " | ".join(cell(s) for s in sizings) + " |")
    print("\nWhat runs out first:\n")
    for s in sizings:
        print(f"- {s.name}: {s.runs_out_first}")


if __name__ == "__main__":
    main()
