"""The analytics store and engine (Stats API v2) against an independent reference computed in
plain Python from the same clean events: any filters (is, is_not, contains, matches, and, or,
not) and breakdowns by several dimensions are exact for closed days: on the embedded store, and
with the Druid SQL the engine sends for closed days, run on EmulatedDruid (an EMULATION on
DuckDB: tests/fakes/druid_sql.py says what it does not exercise)."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import re
from collections import Counter, defaultdict

import pytest

from core.lake.storage import FileStorage
from events.days import day_bounds
from serving.analytics.closed import EmbeddedClosed
from serving.analytics.engine import Analytics
from serving.analytics.goals import Goal
from serving.analytics.query import QueryError, parse_v2
from serving.analytics.sql import uses_rollup
from serving.druid.batch_ingest import DruidDays, Overlord
from serving.druid.closed import DruidClosed
from serving.store.embedded import EmbeddedStore
from serving.store.schema import PROPERTIES
from serving.store.sync import LakeSync
from tests.fakes.druid_sql import EmulatedDruid
from tests.fakes.overlord import FakeOverlord
from tests.serving.conftest import clean_event, close_day

pytestmark = pytest.mark.fast

DAYS = [dt.date(2026, 11, 18), dt.date(2026, 11, 19), dt.date(2026, 11, 20)]
TODAY = dt.date(2026, 11, 21)
NOW = (day_bounds(TODAY)[0] + 6 * 3_600_000) / 1000
PAGES = ["/", "/pricing", "/blog/a", "/blog/b", "/docs"]
SOURCES = ["Google", "Direct / None", "Twitter", "Internal"]
BROWSERS = ["Chrome", "Firefox", "Safari"]
GAP = 30 * 60_000


def make_events(seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    events = []
    for day in DAYS:
        start = day_bounds(day)[0]
        for site in ("a.example", "b.example"):
            for v in range(40):
                visitor, browser = f"{site}-{day}-{v}", rng.choice(BROWSERS)
                t = start + rng.randrange(0, 20 * 3_600_000)
                for _ in range(rng.randint(1, 6)):
                    t += rng.choice([5_000, 60_000, GAP + 1, 2 * GAP])  # some hits start new visits
                    if t >= start + 86_400_000:
                        break
                    name = rng.choice(["pageview"] * 4 + ["Signup"])
                    props = {"plan": rng.choice(["pro", "free"])} if name == "Signup" else {}
                    if rng.random() < 0.3:
                        props['we"ird key'] = rng.choice(["x", "y"])  # a key that needs quoting in a JSON path
                    events.append(
                        clean_event(
                            site,
                            t,
                            visitor,
                            rng.choice(PAGES),
                            rng.choice(SOURCES),
                            browser,
                            name,
                            rng.choice(["", "news"]),
                            props=props,
                        )
                    )
        events.append(clean_event("a.example", start + 1000, "", "/", "Google", "Chrome", "pageview", ""))  # no id
    return events


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    storage = FileStorage(tmp_path_factory.mktemp("lake"))
    events = make_events()
    for day in DAYS:
        close_day(storage, day, [e for e in events if day_bounds(day)[0] <= e["ts"] < day_bounds(day)[1]])
    return storage, events


@pytest.fixture(scope="module")
def druid_analytics(lake, tmp_path_factory):
    """Closed days as Druid would hold them: the serving sync writes each day's hits to the lake
    and submits its task (to FakeOverlord); EmulatedDruid ingests the files as the task says."""
    storage, _ = lake
    root = "hdfs://namenode:8020/pixel"
    with FakeOverlord() as overlord:
        days = DruidDays(Overlord(overlord.url), storage, root, tmp_path_factory.mktemp("d") / "days.json", poll_s=0)
        sync = LakeSync(storage, days)
        assert sync.sync_once() == DAYS
        tasks = [t["task"] for t in overlord.tasks.values()]
    druid = EmulatedDruid()
    for task in tasks:
        druid.ingest(task, [task["spec"]["ioConfig"]["inputSource"]["paths"].replace(root, str(storage.root))])
    return Analytics(DruidClosed(druid), lambda: sync.watermark, None, clock=lambda: NOW)


@pytest.fixture(params=["embedded", "druid"])
def closed_days(request):
    """The engine over each closed-days store."""
    return request.getfixturevalue("analytics" if request.param == "embedded" else "druid_analytics")


@pytest.fixture(scope="module")
def analytics(lake):
    storage, _ = lake
    store = EmbeddedStore()
    sync = LakeSync(storage, store)
    assert sync.sync_once() == DAYS
    return Analytics(EmbeddedClosed(store), lambda: sync.watermark, None, clock=lambda: NOW)


# --- the reference: plain Python over the events ------------------------------------------------
def reference_hits(events: list[dict]) -> list[dict]:
    """Each event with its visit's attributes, visits cut by a plain loop."""
    out = []
    by_visitor = defaultdict(list)
    for e in events:
        by_visitor[(e["site"], e["visitor_id"], dt.datetime.fromtimestamp(e["ts"] / 1000, dt.UTC).date())].append(e)
    for n, (key, hits) in enumerate(sorted(by_visitor.items(), key=lambda kv: str(kv[0]))):
        hits.sort(key=lambda e: e["ts"])
        visits, current = [], []
        for h in hits:
            if current and h["ts"] - current[-1]["ts"] > GAP:
                visits.append(current)
                current = []
            current.append(h)
        visits.append(current)
        for i, visit in enumerate(visits):
            for h in visit:
                out.append(
                    {
                        **h,
                        "visit": (n, i),
                        "visit_hits": len(visit),
                        "duration": visit[-1]["ts"] - visit[0]["ts"],
                        "entry_page": visit[0]["path"],
                        "exit_page": visit[-1]["path"],
                        "v_source": visit[0]["source"],
                        "v_campaign": visit[0]["utm_campaign"],
                        **{f"prop:{k}": v for k, v in h["props"].items()},
                        "day": str(key[2]),
                    }
                )
    return out


VALUE_OF = {
    "event:page": "path",
    "event:name": "event",
    "visit:source": "v_source",
    "visit:browser": "browser",
    "visit:entry_page": "entry_page",
    "visit:exit_page": "exit_page",
    "visit:utm_campaign": "v_campaign",
    "time:day": "day",
}


def value_of(hit: dict, name: str) -> str:
    if name.startswith("event:props:"):
        return hit.get(f"prop:{name.removeprefix('event:props:')}", "")
    return hit[VALUE_OF[name]]


def matches(hit: dict, node) -> bool:
    op = node[0]
    if op == "and":
        return all(matches(hit, c) for c in node[1])
    if op == "or":
        return any(matches(hit, c) for c in node[1])
    if op == "not":
        return not matches(hit, node[1])
    value = value_of(hit, node[1])
    found = {
        "is": value in node[2],
        "contains": any(v in value for v in node[2]),
        "matches": any(re.search(v, value) for v in node[2]),
    }[op.removesuffix("_not")]
    return not found if op.endswith("_not") else found


def half_up(x: float, digits: int = 0) -> float:
    scale = 10**digits
    return math.floor(abs(x) * scale + 0.5) / scale * (1 if x >= 0 else -1)


def reference(hits: list[dict], metrics: list[str], dimensions: list[str], filters: list) -> dict[tuple, list]:
    groups = defaultdict(list)
    for h in hits:
        if all(matches(h, f) for f in filters):
            groups[tuple(value_of(h, d) for d in dimensions)].append(h)
    out = {}
    for key, rows in groups.items():
        visits = {h["visit"]: h for h in rows}
        n = len(visits)
        values = {
            "visitors": len({h["visitor_id"] for h in rows if h["visitor_id"]}),
            "visits": n,
            "events": len(rows),
            "pageviews": sum(h["event"] == "pageview" for h in rows),
            "bounce_rate": half_up(100 * sum(v["visit_hits"] == 1 for v in visits.values()) / n),
            "visit_duration": half_up(sum(v["duration"] for v in visits.values()) / n / 1000),
        }
        values["views_per_visit"] = half_up(values["pageviews"] / n, 2)
        out[key] = [values[m] for m in metrics]
    return out


# --- the tests -----------------------------------------------------------------------------------
FILTERS = [
    [],
    [["is", "visit:browser", ["Chrome"]]],
    [["is", "visit:browser", ["Chrome", "Safari"]], ["contains", "event:page", ["/blog"]]],
    [
        ["is_not", "visit:source", ["Direct / None"]],
        ["is", "event:name", ["pageview"]],
        ["matches", "visit:entry_page", ["^/(pricing|docs)$"]],
    ],
    [["or", [["is", "event:page", ["/pricing"]], ["is", "visit:utm_campaign", ["news"]]]]],
    [["not", ["contains", "event:page", ["blog"]]], ["matches_not", "visit:exit_page", ["^/$"]]],
    [["contains_not", "visit:source", ["oo"]]],
    [["is", "event:props:plan", ["pro"]]],
    [["contains", 'event:props:we"ird key', ["x"]], ["is_not", "event:props:plan", ["free"]]],
]
DIMENSIONS = [
    [],
    ["visit:source"],
    ["event:page", "visit:browser"],
    ["time:day", "visit:entry_page"],
    ["visit:exit_page", "event:name", "visit:utm_campaign"],
    ["event:props:plan", "visit:source"],
]
METRICS = ["visitors", "visits", "pageviews", "events", "bounce_rate", "visit_duration", "views_per_visit"]


@pytest.mark.parametrize("filters", FILTERS, ids=range(len(FILTERS)))
@pytest.mark.parametrize("dimensions", DIMENSIONS, ids=["-".join(d) or "totals" for d in DIMENSIONS])
def test_any_filters_and_dimensions_are_exact_on_closed_days(closed_days, lake, filters, dimensions):
    _, events = lake
    site_events = [e for e in events if e["site"] == "a.example"]
    body = {
        "site_id": "a.example",
        "metrics": METRICS,
        "date_range": [str(DAYS[0]), str(DAYS[-1])],
        "dimensions": dimensions,
        "filters": filters,
    }
    answer = closed_days.answer(parse_v2(body, TODAY))
    got = {tuple(r["dimensions"]): r["metrics"] for r in answer["results"]}
    want = reference(reference_hits(site_events), METRICS, dimensions, filters)
    assert got.keys() == want.keys()
    for key in want:
        assert got[key][:-1] == want[key][:-1], key
        assert got[key][-1] == pytest.approx(want[key][-1], abs=0.011), key  # views_per_visit, 2 decimals
    assert answer["meta"]["final"] == [str(DAYS[0]), str(DAYS[-1])]
    # Druid's visitors are HLL estimates (the emulation counts exactly): the answer says so.
    druid = isinstance(closed_days.closed, DruidClosed)
    assert ("final_visitors_error" in answer["meta"]) == druid
    if druid:
        assert answer["meta"]["final_visitors_error"] == "±3.2% (95%) of the final part"


GOALS = [Goal(event="Signup"), Goal(page="/blog/*"), Goal(page="/")]


def completes(hit: dict, goal: Goal) -> bool:
    if goal.event:
        return hit["event"] == goal.event
    return hit["event"] == "pageview" and re.fullmatch(goal.page.replace("*", ".*"), hit["path"]) is not None


@pytest.mark.parametrize(
    "dimensions,filters",
    [
        (["event:goal"], []),
        (["event:goal", "visit:source"], [["is", "visit:browser", ["Chrome", "Safari"]]]),
        (["visit:source"], [["is", "event:goal", ["Signup", "Visit /blog/*"]]]),
        ([], [["is", "event:goal", ["Visit /"]]]),
        (["event:goal"], [["is_not", "event:goal", ["Signup"]]]),
    ],
)
def test_goals_and_conversion_rates_are_exact(closed_days, lake, dimensions, filters):
    """Per goal: the visitors who completed it, its completions (events), and the share of the
    visitors (under the other filters, per group of the other dimensions) who did."""
    _, events = lake
    hits = reference_hits([e for e in events if e["site"] == "a.example"])
    analytics = Analytics(closed_days.closed, closed_days.watermark, None, clock=lambda: NOW, goals=lambda s: GOALS)
    body = {
        "site_id": "a.example",
        "metrics": ["visitors", "events", "conversion_rate"],
        "date_range": [str(DAYS[0]), str(DAYS[-1])],
        "dimensions": dimensions,
        "filters": filters,
    }
    got = {tuple(r["dimensions"]): r["metrics"] for r in analytics.answer(parse_v2(body, TODAY))["results"]}

    plain = [f for f in filters if f[1] != "event:goal"]
    named = {v for f in filters if f[1] == "event:goal" and f[0] == "is" for v in f[2]}
    excluded = {v for f in filters if f[1] == "event:goal" and f[0] == "is_not" for v in f[2]}
    others = [d for d in dimensions if d != "event:goal"]
    base = [h for h in hits if all(matches(h, f) for f in plain)]
    total = defaultdict(set)
    for h in base:
        if h["visitor_id"]:  # hits without an id are no visitor
            total[tuple(value_of(h, d) for d in others)].add(h["visitor_id"])
    want = {}
    if "event:goal" in dimensions:
        for goal in GOALS:
            if goal.name in excluded or (named and goal.name not in named):
                continue
            groups = defaultdict(list)
            for h in base:
                if completes(h, goal):
                    groups[tuple(value_of(h, d) for d in others)].append(h)
            for key, rows in groups.items():
                full = list(key)
                full.insert(dimensions.index("event:goal"), goal.name)
                visitors = len({h["visitor_id"] for h in rows if h["visitor_id"]})
                want[tuple(full)] = [visitors, len(rows), round(100 * visitors / len(total[key]), 2)]
    else:
        chosen = [g for g in GOALS if g.name in named]
        groups = defaultdict(list)
        for h in base:
            if any(completes(h, g) for g in chosen):
                groups[tuple(value_of(h, d) for d in others)].append(h)
        for key, rows in groups.items():
            visitors = len({h["visitor_id"] for h in rows if h["visitor_id"]})
            want[key] = [visitors, len(rows), round(100 * visitors / len(total[key]), 2)]
    assert got == want


def test_conversion_rate_needs_goals_and_goals_must_exist(analytics):
    body = {"site_id": "a.example", "metrics": ["conversion_rate"], "date_range": "7d"}
    with pytest.raises(QueryError, match="conversion_rate needs goals"):
        analytics.answer(parse_v2(body, TODAY))
    engine = Analytics(analytics.closed, analytics.watermark, None, clock=lambda: NOW, goals=lambda s: GOALS)
    with pytest.raises(QueryError, match="no goal 'Purchase' on this site; its goals: 'Signup'"):
        engine.answer(parse_v2({**body, "filters": [["is", "event:goal", ["Purchase"]]]}, TODAY))


def test_other_sites_rows_never_count(closed_days, lake):
    _, events = lake
    body = {"site_id": "b.example", "metrics": ["events"], "date_range": "all"}
    answer = closed_days.answer(parse_v2(body, TODAY, first_data_day=DAYS[0]))
    assert answer["results"][0]["metrics"] == [sum(e["site"] == "b.example" for e in events)]


def test_order_pagination_total_rows_and_percentage(closed_days, lake):
    analytics = closed_days
    _, events = lake
    base = {
        "site_id": "a.example",
        "metrics": ["visitors", "percentage"],
        "date_range": [str(DAYS[0]), str(DAYS[-1])],
        "dimensions": ["event:page"],
        "order_by": [["visitors", "desc"]],
        "include": {"total_rows": True},
    }
    whole = analytics.answer(parse_v2(base, TODAY))
    assert whole["meta"]["total_rows"] == len(PAGES)
    visitors = [r["metrics"][0] for r in whole["results"]]
    assert visitors == sorted(visitors, reverse=True)
    total = reference(reference_hits([e for e in events if e["site"] == "a.example"]), ["visitors"], [], [])[()][0]
    assert [r["metrics"][1] for r in whole["results"]] == [round(100 * v / total, 1) for v in visitors]
    page2 = analytics.answer(parse_v2({**base, "pagination": {"limit": 2, "offset": 2}}, TODAY))
    assert page2["results"] == whole["results"][2:4] and page2["meta"]["total_rows"] == len(PAGES)


def test_previous_period_comparison(analytics):
    body = {
        "site_id": "a.example",
        "metrics": ["pageviews"],
        "date_range": [str(DAYS[2]), str(DAYS[2])],
        "include": {"comparisons": {"mode": "previous_period"}},
    }
    answer = analytics.answer(parse_v2(body, TODAY))
    day = lambda d: analytics.answer(parse_v2({**body, "date_range": [str(d), str(d)], "include": {}}, TODAY))  # noqa: E731
    now, before = day(DAYS[2])["results"][0]["metrics"][0], day(DAYS[1])["results"][0]["metrics"][0]
    row = answer["results"][0]
    assert row["metrics"] == [now] and row["comparison"]["metrics"] == [before]
    assert row["comparison"]["change"] == [round(100 * (now - before) / before)]
    assert answer["meta"]["comparison_date_range"] == [str(DAYS[1]), str(DAYS[1])]


def test_open_days_are_named_and_not_made_up(analytics):
    body = {"site_id": "a.example", "metrics": ["visits"], "date_range": "7d", "filters": []}
    answer = analytics.answer(parse_v2(body, TODAY))
    assert answer["meta"]["provisional"] == [str(TODAY), str(TODAY)]
    assert "closed days only" in answer["meta"]["warnings"][0]


@pytest.mark.parametrize(
    "body,message",
    [
        ({"metrics": ["visitors"], "date_range": "7d"}, "site_id is required"),
        ({"site_id": "a", "metrics": ["clicks"], "date_range": "7d"}, "unknown metric 'clicks'"),
        (
            {"site_id": "a", "metrics": ["visitors"], "date_range": "7d", "dimensions": ["visit:shoe"]},
            "unknown dimension",
        ),
        (
            {"site_id": "a", "metrics": ["visitors"], "date_range": "7d", "filters": [["like", "event:page", ["/"]]]},
            "unknown filter operator",
        ),
        ({"site_id": "a", "metrics": ["visitors"], "date_range": "fortnight"}, "unknown date_range"),
        ({"site_id": "a", "metrics": ["visitors"], "date_range": ["2026-01-02", "2026-01-01"]}, "before it starts"),
        (
            {
                "site_id": "a",
                "metrics": ["visitors"],
                "date_range": "7d",
                "filters": [["is", "event:page", ["x"] * 101]],
            },
            "1 to 100 strings",
        ),
        ({"site_id": "a", "metrics": ["percentage"], "date_range": "7d"}, "percentage needs dimensions"),
        (
            {"site_id": "a", "metrics": ["visitors"], "date_range": "7d", "order_by": [["pageviews", "desc"]]},
            "order_by",
        ),
        ({"site_id": "a", "metrics": ["visitors"], "date_range": "7d", "pagination": {"limit": 0}}, "pagination.limit"),
    ],
)
def test_bad_queries_say_what_is_allowed(body, message):
    with pytest.raises(QueryError, match=re.escape(message)):
        parse_v2(body, TODAY)


def test_huge_ranges_and_hostile_patterns_are_cheap_or_refused(analytics):
    huge = {
        "site_id": "a.example",
        "metrics": ["visitors"],
        "date_range": ["1000-01-01", "2999-12-31"],
        "filters": [["matches", "event:page", ["(a+)+$"]]],
        "dimensions": ["time:day"],
    }
    answer = analytics.answer(parse_v2(huge, TODAY))  # RE2 matches in linear time; empty days are skipped
    assert answer["meta"]["final"] == ["1000-01-01", str(DAYS[-1])]
    bad = {**huge, "filters": [["matches", "event:page", ["(unclosed"]]]}
    with pytest.raises(QueryError, match="not a valid RE2 expression"):
        analytics.answer(parse_v2(bad, TODAY))


def test_a_rerun_day_replaces_its_rows(lake, tmp_path):
    storage, events = lake
    store = EmbeddedStore(tmp_path / "hits.duckdb")
    sync = LakeSync(storage, store)
    sync.sync_once()
    assert sync.sync_once() == []  # nothing new
    storage.write_atomic(f"views/_runs/date={DAYS[1]}.json", json.dumps({"date": str(DAYS[1]), "rerun": 1}).encode())
    assert sync.sync_once() == [DAYS[1]]
    count = store.query("SELECT count(*) FROM hits", [])[0][0]
    assert count == len(events)


ROLLUP_DIMENSIONS = [[], ["time:day"], ["time:month"], *([p] for p in PROPERTIES), ["time:week", "visit:source"]]


@pytest.mark.parametrize("dimensions", ROLLUP_DIMENSIONS, ids=["-".join(d) or "totals" for d in ROLLUP_DIMENSIONS])
def test_the_per_day_rollups_answer_as_the_hits_do(analytics, dimensions):
    body = {
        "site_id": "a.example",
        "metrics": [*METRICS, "percentage"] if dimensions else METRICS,
        "date_range": [str(DAYS[0]), str(DAYS[-1])],
        "dimensions": dimensions,
        "include": {"total_rows": True},
        "pagination": {"limit": 3, "offset": 1} if dimensions else {},
    }
    query = parse_v2(body, TODAY)
    assert uses_rollup(query, query.dimensions)
    from_hits = Analytics(
        EmbeddedClosed(analytics.closed.store, rollups=False), analytics.watermark, None, clock=lambda: NOW
    )
    assert analytics.answer(query) == from_hits.answer(query)


def test_rollups_answer_big_sites_and_hits_small_ones(analytics):
    query = parse_v2({"site_id": "a.example", "metrics": ["visitors"], "date_range": "7d"}, TODAY)
    sized = lambda n: EmbeddedClosed(analytics.closed.store, site_events=lambda: {"a.example": n})  # noqa: E731
    assert sized(10**6)._rollup_pays(query) and not sized(10)._rollup_pays(query)
    filtered = parse_v2(
        {
            **{"site_id": "a.example", "metrics": ["visitors"], "date_range": "7d"},
            "filters": [["is", "event:page", ["/"]]],
        },
        TODAY,
    )
    assert not sized(10**6)._rollup_pays(filtered)
    answer = lambda closed: Analytics(closed, analytics.watermark, None, clock=lambda: NOW).answer(query)  # noqa: E731
    assert answer(sized(10**6))["results"] == answer(sized(10))["results"]


def test_rates_over_no_visits_are_zero(closed_days):
    """A day without visits: bounce rate, duration and views per visit are 0 (0/0 is no NaN)."""
    body = {
        "site_id": "a.example",
        "metrics": ["visits", "bounce_rate", "visit_duration", "views_per_visit"],
        "date_range": ["2020-01-01", "2020-01-01"],
    }
    assert closed_days.answer(parse_v2(body, TODAY))["results"] == [{"dimensions": [], "metrics": [0, 0, 0, 0]}]


@pytest.mark.parametrize("filters", [None, [["is", "visit:browser", ["Chrome"]]], [["is", "event:page", ["/nope"]]]])
def test_property_keys_are_counted_exactly_with_the_filters(closed_days, lake, filters):
    _, events = lake
    body = {"site_id": "a.example", "metrics": ["events"], "date_range": [str(DAYS[0]), str(DAYS[1])]}
    query = parse_v2({**body, "filters": filters} if filters else body, TODAY)
    wanted = [
        e
        for e in events
        if e["site"] == "a.example"
        and DAYS[0] <= dt.datetime.fromtimestamp(e["ts"] / 1000, dt.UTC).date() <= DAYS[1]
        and (not filters or e[{"visit:browser": "browser", "event:page": "path"}[filters[0][1]]] in filters[0][2])
    ]
    counts = Counter(key for e in wanted for key in e["props"])
    expected = [{"key": k, "events": n} for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    assert closed_days.prop_keys(query) == expected
    assert closed_days.prop_keys(query, limit=1) == expected[:1]
    with pytest.raises(QueryError, match="goal"):
        closed_days.prop_keys(parse_v2({**body, "filters": [["is", "event:goal", ["Signup"]]]}, TODAY))
