"""The Lambda merge over real batch-view files and a real (DuckDB) real-time store: closed days
from the batch views, later time from the store, visitors by sketch union across the seam."""

from __future__ import annotations

import pytest

from events.days import day_bounds
from events.sketches import RELATIVE_ERROR
from serving.merge import DayRange
from tests.serving.conftest import D1, D2, D3, NOW

pytestmark = pytest.mark.fast


def test_the_plan_splits_at_the_watermark(stats):
    plan = stats.plan(DayRange(D1, D3))
    assert plan.batch_days == [D1, D2] and plan.live == (day_bounds(D3)[0], int(NOW * 1000) + 1)
    assert stats.plan(DayRange(D1, D2)).live is None
    assert stats.plan(DayRange(D3, D3)).batch_days == []


def test_closed_days_are_exact(stats):
    count = stats.aggregate("a.example", DayRange(D1, D2))
    assert (count.pageviews, count.visitors) == (800, 300)  # exact, the speed view's D2 ignored
    assert stats.aggregate("b.example", DayRange(D1, D2)).pageviews == 9
    assert stats.aggregate("nobody.example", DayRange(D1, D2)).pageviews == 0


def test_across_the_seam_pageviews_add_and_visitors_union(stats):
    count = stats.aggregate("a.example", DayRange(D1, D3))
    assert count.pageviews == 300 + 500 + 50
    assert abs(count.visitors - 325) <= 3 * RELATIVE_ERROR * 325


def test_each_day_comes_from_its_view(stats):
    series = [(d, stats.aggregate("a.example", DayRange(d, d))) for d in DayRange(D1, D3).days()]
    assert [(d, c.pageviews) for d, c in series] == [(D1, 300), (D2, 500), (D3, 50)]
    assert [c.visitors for _, c in series][:2] == [100, 200]


def test_breakdown_merges_values_across_days_and_the_seam(stats):
    pages = {r.value: r.count for r in stats.breakdown("a.example", "page", DayRange(D1, D3))}
    assert {v: c.pageviews for v, c in pages.items()} == {"/": 230, "/docs": 600, "/new": 10}
    assert abs(pages["/docs"].visitors - 230) <= 3 * RELATIVE_ERROR * 230  # a union: the range is open
    top = stats.breakdown("a.example", "page", DayRange(D1, D2), limit=1)
    assert [(r.value, r.count.pageviews, r.count.visitors) for r in top] == [("/docs", 600, 230)]
    with pytest.raises(ValueError, match="unknown dimension"):
        stats.breakdown("a.example", "total", DayRange(D1, D2))


def test_visits_only_where_every_day_is_closed(stats):
    visits = stats.visits("a.example", DayRange(D1, D2))
    assert (visits.visits, visits.bounce_rate, visits.visit_duration_s) == (
        350,
        43,
        51,
    )  # (120*90 s + 230*30 s) / 350 visits
    assert stats.visits("a.example", DayRange(D2, D3)) is None


def test_realtime_visitors_come_from_the_store(stats):
    assert stats.realtime_visitors("a.example", minutes=5) == 0  # nothing in the last 5 minutes
    assert stats.realtime_visitors("a.example", minutes=11 * 60) == 25


def test_a_backwards_range_is_refused():
    with pytest.raises(ValueError, match="before it starts"):
        DayRange(D2, D1)
