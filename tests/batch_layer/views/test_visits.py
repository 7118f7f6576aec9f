"""Visits summed from hits in visitor order, fed in batches of any size (batch_layer.views.visits, through
the views' one pass: batch_layer.views.one_pass)."""

from __future__ import annotations

import random
from collections import defaultdict

import pyarrow as pa
import pytest

from batch_layer.views.one_pass import PASS_COLUMNS, view_sums
from events.aggregate import DIMENSIONS, SESSION_GAP_MS

pytestmark = pytest.mark.fast
MINUTE = 60_000


def hits_table(rows: list[dict]) -> pa.Table:
    """Hits sorted as the batch job holds them: by (visitor_id, site, ts)."""
    rows = sorted(rows, key=lambda r: (r["visitor_id"] is None, r["visitor_id"] or "", r["site"], r["ts"]))
    types = {"ts": pa.int64(), "is_bot": pa.bool_()}
    return pa.table(
        {name: [r[name] for r in rows] for name in PASS_COLUMNS},
        schema=pa.schema([(n, types.get(n, pa.string())) for n in PASS_COLUMNS]),
    )


def hit(visitor, site, ts, path="/", source="Direct / None", bot=False) -> dict:
    return {
        "visitor_id": visitor,
        "site": site,
        "ts": ts,
        "is_bot": bot,
        "path": path,
        "source": source,
        "browser": "Firefox",
        "os": "Linux",
        "device": "bot" if bot else "desktop",
    }


def sums_of(table: pa.Table, cuts: list[int]) -> dict:
    """The visit sums with the table fed in batches cut at these rows."""
    bounds = [0, *cuts, table.num_rows]
    batches = [b for start, end in zip(bounds, bounds[1:]) for b in table.slice(start, end - start).to_batches()]
    return {
        (r["site"], r["dimension"], r["value"]): (r["visits"], r["bounces"], r["visit_pageviews"], r["duration_ms"])
        for out in view_sums(iter(batches))
        for r in out.to_pylist()
        if r["visits"] is not None
    }


def reference(rows: list[dict]) -> dict:
    """Visits the plain way: each visitor's hits in time order, cut where the gap is over 30 min."""
    by_visitor = defaultdict(list)
    for r in rows:
        by_visitor[(r["visitor_id"], r["site"])].append(r)
    out = defaultdict(lambda: [0, 0, 0, 0])
    for hits in by_visitor.values():
        hits.sort(key=lambda r: r["ts"])
        visits = [[hits[0]]]
        for before, now in zip(hits, hits[1:]):
            if now["ts"] - before["ts"] > SESSION_GAP_MS:
                visits.append([])
            visits[-1].append(now)
        for visit in visits:
            for dim, column in DIMENSIONS.items():
                sums = out[(visit[0]["site"], dim, visit[0][column] if column else "")]
                sums[0] += 1
                sums[1] += len(visit) == 1
                sums[2] += len(visit)
                sums[3] += visit[-1]["ts"] - visit[0]["ts"]
    return {key: tuple(v) for key, v in out.items()}


def test_a_gap_of_exactly_thirty_minutes_stays_in_the_visit():
    rows = [
        hit("v1", "a", 0, "/in"),
        hit("v1", "a", SESSION_GAP_MS, "/on"),
        hit("v1", "a", 2 * SESSION_GAP_MS + 1, "/new"),
        hit("v2", "a", 5 * MINUTE, "/in"),
    ]
    got = sums_of(hits_table(rows), [])
    assert got[("a", "total", "")] == (3, 2, 4, SESSION_GAP_MS)
    assert got[("a", "page", "/in")] == (2, 1, 3, SESSION_GAP_MS)  # entry pages only
    assert got[("a", "page", "/new")] == (1, 1, 1, 0) and ("a", "page", "/on") not in got


def test_a_visitor_cut_between_batches_is_one_visitor():
    rows = [hit("v1", "a", i * MINUTE) for i in range(5)] + [hit("v2", "a", 0)]
    table = hits_table(rows)
    whole = sums_of(table, [])
    assert whole[("a", "total", "")] == (2, 1, 6, 4 * MINUTE)
    for cut in range(table.num_rows + 1):
        assert sums_of(table, [cut]) == whole
    assert sums_of(table, [1, 2, 3, 4, 5]) == whole  # a batch per hit


def test_same_visitor_id_on_two_sites_is_two_visitors_and_null_ids_are_one():
    rows = [hit("v1", "a", 0), hit("v1", "b", MINUTE), hit(None, "a", 0), hit(None, "a", MINUTE), hit("", "a", 0)]
    got = sums_of(hits_table(rows), [])
    # a: v1 alone (a bounce), the two null-id hits (one visit), the empty id alone (a bounce)
    assert got[("a", "total", "")] == (3, 2, 4, MINUTE) and got[("b", "total", "")] == (1, 1, 1, 0)


def test_random_hits_in_random_batches_match_the_plain_way():
    rng = random.Random(20261125)
    rows = [
        hit(
            f"v{rng.randrange(60)}",
            rng.choice("ab"),
            rng.randrange(0, 86_400_000, 1000),
            rng.choice(["/", "/a", "/b"]),
            rng.choice(["Google", "Direct / None"]),
        )
        for _ in range(2000)
    ]
    table = hits_table(rows)
    want = reference(rows)
    for _ in range(5):
        cuts = sorted(rng.sample(range(1, table.num_rows), rng.randrange(0, 40)))
        assert sums_of(table, cuts) == want
    assert sums_of(table, list(range(97, table.num_rows, 97))) == want


def test_bots_make_no_visits_even_among_hits_without_a_visitor_id():
    """Hits without an id are one visitor to Spark's sort: a bot's hit first, then a person's
    two. The person's visit still starts at the person's first hit."""
    rows = [
        hit(None, "a", 0, "/bot", bot=True),
        hit(None, "a", MINUTE, "/in"),
        hit(None, "a", 2 * MINUTE, "/on"),
        hit("b1", "a", 0, "/bot", bot=True),
        hit("v1", "a", 0, "/in"),
    ]
    got = sums_of(hits_table(rows), [])
    assert got[("a", "total", "")] == (2, 1, 3, MINUTE)
    assert got[("a", "page", "/in")] == (2, 1, 3, MINUTE) and ("a", "page", "/bot") not in got
    assert ("a", "bots", "") not in got and ("a", "device", "bot") not in got


def test_no_hits_no_sums():
    assert list(view_sums(iter([]))) == []
