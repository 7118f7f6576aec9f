"""The daily view's numbers per (site, dimension, value) from hits in visitor order, fed in batches
of any size: pageviews, exact visitors and their sketch (batch_layer.views.daily_counts, through the views' one
pass: batch_layer.views.one_pass)."""

from __future__ import annotations

import base64
import random
from collections import defaultdict

import pyarrow as pa
import pytest

from batch_layer.views.one_pass import PASS_COLUMNS, view_sums
from events.aggregate import BOTS, DIMENSIONS
from events.sketches import RELATIVE_ERROR, estimate, sketch_of

pytestmark = pytest.mark.fast


def hits_table(rows: list[dict]) -> pa.Table:
    """Hits sorted as the batch job holds them: by (visitor_id, site), nulls last."""
    rows = sorted(rows, key=lambda r: (r["visitor_id"] is None, r["visitor_id"] or "", r["site"]))
    types = {"is_bot": pa.bool_(), "ts": pa.int64()}
    return pa.table(
        {name: [r[name] for r in rows] for name in PASS_COLUMNS},
        schema=pa.schema([(n, types.get(n, pa.string())) for n in PASS_COLUMNS]),
    )


def hit(visitor, site, path="/", source="Direct / None", bot=False, browser="Firefox") -> dict:
    return {
        "visitor_id": visitor,
        "site": site,
        "ts": 0,
        "is_bot": bot,
        "path": path,
        "source": source,
        "browser": browser,
        "os": "Linux",
        "device": "bot" if bot else "desktop",
    }


def numbers_of(table: pa.Table, cuts: list[int]) -> dict:
    """(pageviews, visitors, the sketch's estimate) per key, with the table fed in batches cut
    at these rows."""
    bounds = [0, *cuts, table.num_rows]
    batches = [b for start, end in zip(bounds, bounds[1:]) for b in table.slice(start, end - start).to_batches()]
    return {
        (r["site"], r["dimension"], r["value"]): (r["pageviews"], r["visitors"], estimate([_b64(r["visitors_hll"])]))
        for out in view_sums(iter(batches))
        for r in out.to_pylist()
        if r["pageviews"] is not None
    }


def counts_of(table: pa.Table, cuts: list[int]) -> dict:
    """The exact visitors per key."""
    return {key: visitors for key, (_, visitors, _) in numbers_of(table, cuts).items()}


def _b64(sketch: bytes) -> str:
    return base64.b64encode(sketch).decode()


def reference(rows: list[dict]) -> dict:
    """(hits, distinct known ids (not null, not ""), the same) per (site, dimension, value), the
    plain way."""
    hits, seen = defaultdict(int), defaultdict(set)
    for r in rows:
        keys = (
            [(r["site"], BOTS, "")]
            if r["is_bot"]
            else [(r["site"], dim, r[column] if column else "") for dim, column in DIMENSIONS.items()]
        )
        for key in keys:
            hits[key] += 1
            if r["visitor_id"]:
                seen[key].add(r["visitor_id"])
    return {key: (n, len(seen[key]), len(seen[key])) for key, n in hits.items()}


def test_each_visitor_counts_once_per_value():
    rows = [hit("v1", "a", "/x"), hit("v1", "a", "/x"), hit("v1", "a", "/y"), hit("v2", "a", "/x")]
    got = counts_of(hits_table(rows), [])
    assert got[("a", "total", "")] == 2
    assert got[("a", "page", "/x")] == 2 and got[("a", "page", "/y")] == 1


def test_a_visitor_cut_between_batches_counts_once():
    rows = [hit("v1", "a", "/x") for _ in range(5)] + [hit("v2", "a", "/x")]
    table = hits_table(rows)
    for cut in range(table.num_rows + 1):
        assert counts_of(table, [cut])[("a", "page", "/x")] == 2
    assert counts_of(table, [1, 2, 3, 4, 5])[("a", "total", "")] == 2  # a batch per hit


def test_ids_are_per_site_unknown_ids_dont_count_and_bots_are_apart():
    rows = [
        hit("v1", "a"),
        hit("v1", "b"),
        hit(None, "a"),
        hit("", "a"),
        hit("b1", "a", bot=True),
        hit("b1", "a", bot=True),
        hit("b2", "a", bot=True),
    ]
    got = counts_of(hits_table(rows), [])
    assert got[("a", "total", "")] == 1 and got[("b", "total", "")] == 1
    assert got[("a", BOTS, "")] == 2 and ("a", "browser", "Firefox") in got


def test_null_values_are_a_value_of_their_own():
    rows = [hit("v1", "a", browser=None), hit("v2", "a", browser=None), hit("v3", "a")]
    got = counts_of(hits_table(rows), [])
    assert got[("a", "browser", None)] == 2 and got[("a", "browser", "Firefox")] == 1


def test_random_hits_in_random_batches_match_the_plain_way():
    rng = random.Random(20261125)
    ids = [f"v{i}" for i in range(80)] + ["", None]
    rows = [
        hit(
            rng.choice(ids),
            rng.choice("ab"),
            rng.choice(["/", "/a", "/b", None]),
            rng.choice(["Google", "Direct / None"]),
            bot=rng.random() < 0.1,
            browser=rng.choice(["Firefox", "Chrome"]),
        )
        for _ in range(2000)
    ]
    table = hits_table(rows)
    want = reference(rows)
    for _ in range(5):
        cuts = sorted(rng.sample(range(1, table.num_rows), rng.randrange(0, 40)))
        assert numbers_of(table, cuts) == want
    assert numbers_of(table, list(range(1, table.num_rows))) == want  # a batch per hit: > 64 partial counts


def test_no_hits_no_counts_and_unknown_visitors_are_pageviews_only():
    assert list(view_sums(iter([]))) == []
    only_unknown = hits_table([hit(None, "a"), hit("", "a")])
    assert numbers_of(only_unknown, [])[("a", "total", "")] == (2, 0, 0)


def test_the_sketch_unions_with_the_speed_layers_sketches():
    """Same hashing as events.sketches (the speed layer's): a visitor in both counts once."""
    rows = [hit(f"v{i}", "a") for i in range(300)]
    out = pa.Table.from_batches(list(view_sums(iter(hits_table(rows).to_batches()))))
    total = next(r for r in out.to_pylist() if (r["site"], r["dimension"], r["value"]) == ("a", "total", ""))
    assert estimate([_b64(total["visitors_hll"])]) == 300  # a small sketch still lists its ids: exact
    # 400 ids, not 500: the 100 both saw are the same to the sketch (HLL's error, not 25%, apart).
    union = estimate([_b64(total["visitors_hll"]), sketch_of(f"v{i}" for i in range(200, 400))])
    assert abs(union - 400) <= 3 * RELATIVE_ERROR * 400
