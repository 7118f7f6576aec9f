"""Micro-benchmark of the enrichment library (events/), with baselines in the same run.

- UA parsing, cached, on a realistic mix (Zipf over ~5000 distinct UAs: the top 100 carry
  most hits) vs. the same parses uncached (Rust resolver every time).
- UA parsing misses: ua-parser's Rust resolver vs. its pure-Python resolver; and the is-bot
  verdict (the slowest part of a miss).
- enrich_table (Arrow) and enrich_frame (pandas), vectorized per distinct value, vs. enrich_event
  row by row, events/s.
- The location (events.geo: DB-IP's database, cached per network) and the channel: lookups per
  second cached and uncached, and enrich_table with them vs. enrich_table with both switched off
  (every location empty, one channel), same events, same run.

    .venv/bin/python bench/enrich.py [--events 200000]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
from is_bot import Bots  # noqa: E402
from ua_parser import Parser, basic, load_builtins, load_lazy_builtins, regex  # noqa: E402

from events import channels, enrich, geo, useragent  # noqa: E402
from events.enrich import enrich_event, enrich_frame, enrich_table  # noqa: E402
from pixel.demo import PAGES, REFERRERS, USER_AGENTS  # noqa: E402


def realistic_uas(distinct: int, n: int, rng: random.Random) -> list[str]:
    """Versions vary like real traffic; popularity is Zipf, so few UAs carry most hits."""
    base = [u for u, _ in USER_AGENTS]
    # Each variant gets its own build number in its first version: distinct strings, same families.
    variants = [
        re.sub(r"(\d+)\.(\d+)", lambda m, i=i: f"{m[1]}.{m[2]}.{i}", base[i % len(base)], count=1)
        for i in range(distinct)
    ]
    weights = [1 / (i + 1) ** 1.2 for i in range(distinct)]
    return rng.choices(variants, weights, k=n)


def realistic_networks(distinct: int, n: int, rng: random.Random) -> list[str]:
    """/24 networks over the IPv4 unicast space, Zipf-popular (a site's visitors repeat)."""
    networks = [f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.0" for _ in range(distinct)]
    weights = [1 / (i + 1) ** 0.8 for i in range(distinct)]
    return rng.choices(networks, weights, k=n)


def rate(fn, items) -> float:
    t = time.perf_counter()
    for item in items:
        fn(item)
    return len(items) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    args = ap.parse_args()
    rng = random.Random(7)
    mix = realistic_uas(5000, args.events, rng)
    distinct = len(set(mix))
    top100 = sum(c for _, c in Counter(mix).most_common(100)) / len(mix)

    useragent.parse_user_agent.cache_clear()
    cached_first = rate(useragent.parse_user_agent, mix)  # includes each distinct UA's one miss
    cached_warm = rate(useragent.parse_user_agent, mix)
    rust = Parser(regex.Resolver(load_lazy_builtins()))
    uncached = rate(rust.parse, mix[:20000])

    unique = list(dict.fromkeys(mix))[:2000]
    rust_miss = rate(rust.parse, unique)
    pure = Parser(basic.Resolver(load_builtins()))
    pure_miss = rate(pure.parse, unique[:200])
    # The bot list: our matcher of is-bot's patterns vs is-bot's own (one IGNORECASE alternation).
    isbot_miss = rate(Bots().is_bot, unique[:1000])
    listed_miss = rate(useragent._is_listed_bot, unique[:1000])

    networks = realistic_networks(50_000, args.events, rng)
    database = geo.geo_database()
    if database is None:
        raise SystemExit("no IP location database: run `make setup`")
    unique_networks = list(dict.fromkeys(networks))
    geo_miss = rate(database._locate, unique_networks[:20000])
    database.locate.cache_clear()
    geo_cold = rate(database.locate, networks)
    geo_warm = rate(database.locate, networks)
    channel_args = [
        (s, c, m, "", k)
        for s, c in (
            ("Google", "search"),
            ("Direct / None", "direct"),
            ("example.net", "other"),
            ("Facebook", "social"),
        )
        for m in ("", "cpc", "email")
        for k in ("", "gclid")
    ]
    channel_miss = rate(lambda a: channels.channel_of.__wrapped__(*a), channel_args * 200)

    sites = [f"site{i}.example" for i in range(20)]
    rows = [
        {
            "v": 1,
            "event_id": f"e{i}",
            "ts": 1_795_507_200_000 + i,
            "site": (s := rng.choice(sites)),
            "event": "pageview",
            "url": f"https://{s}{rng.choice(PAGES)}",
            "ua": mix[i],
            "referrer": rng.choices([r for r, _ in REFERRERS], [w for _, w in REFERRERS])[0],
            "ip_trunc": networks[i],
            "visitor_id": "v",
            "uid": "",
            "eid": "",
            "lang": "en",
            "dnt": False,
        }
        for i in range(args.events)
    ]
    frame = pd.DataFrame(rows)
    t = time.perf_counter()
    enrich_frame(frame)
    frame_rate = len(rows) / (time.perf_counter() - t)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    t = time.perf_counter()
    enrich_table(table)
    table_rate = len(rows) / (time.perf_counter() - t)
    row_rate = rate(enrich_event, rows[:50000])
    # The same table with the location and the channel switched off: what they add.
    located, channelled = enrich.geo_locator, enrich.channel_of
    enrich.geo_locator, enrich.channel_of = (lambda: lambda network: geo.NOWHERE), (lambda *values: "Direct")
    try:
        t = time.perf_counter()
        enrich_table(table)
        without_rate = len(rows) / (time.perf_counter() - t)
    finally:
        enrich.geo_locator, enrich.channel_of = located, channelled
    t = time.perf_counter()
    enrich_table(table)
    table_rate_again = len(rows) / (time.perf_counter() - t)

    print(
        f"\n{args.events:,} events, {distinct:,} distinct UAs (top 100 UAs = {top100:.0%} of hits), "
        f"{len(unique_networks):,} distinct /24 networks\n"
    )
    print("| what | rate | baseline (same run) | ratio |")
    print("|---|---|---|---|")
    print(
        f"| UA parse, cached, realistic mix (warm) | {cached_warm:,.0f}/s | uncached Rust resolver {uncached:,.0f}/s | {cached_warm / uncached:.0f}x |"
    )
    print(
        f"| UA parse, cached, realistic mix (cold: pays every miss once) | {cached_first:,.0f}/s | uncached {uncached:,.0f}/s | {cached_first / uncached:.1f}x |"
    )
    print(
        f"| UA parse miss, Rust resolver | {1e6 / rust_miss:.1f} us | pure-Python resolver {1e6 / pure_miss:.0f} us | {rust_miss / pure_miss:.0f}x faster |"
    )
    print(
        f"| bot list verdict miss (events.useragent.bot_matcher) | {1e6 / listed_miss:.0f} us | is-bot's own matcher {1e6 / isbot_miss:.0f} us | {listed_miss / isbot_miss:.1f}x faster |"
    )
    print(
        f"| enrich_table (vectorized, Arrow) | {table_rate:,.0f} events/s | enrich_event row by row {row_rate:,.0f}/s | {table_rate / row_rate:.1f}x |"
    )
    print(
        f"| location lookup, cached per network (warm) | {geo_warm:,.0f}/s | uncached {geo_miss:,.0f}/s | {geo_warm / geo_miss:.0f}x |"
    )
    print(
        f"| location lookup, cached (cold: pays every miss once) | {geo_cold:,.0f}/s | uncached {geo_miss:,.0f}/s | {geo_cold / geo_miss:.1f}x |"
    )
    print(f"| channel rule table, uncached | {channel_miss:,.0f}/s | - | - |")
    print(
        f"| enrich_table with location and channel (warm caches) | {table_rate_again:,.0f} events/s | without them {without_rate:,.0f}/s | {table_rate_again / without_rate:.2f}x |"
    )
    print(
        f"| enrich_frame (enrich_table behind pandas) | {frame_rate:,.0f} events/s | enrich_event row by row {row_rate:,.0f}/s | {frame_rate / row_rate:.1f}x |"
    )


if __name__ == "__main__":
    main()
