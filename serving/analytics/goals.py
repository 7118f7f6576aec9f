"""Goals: a site's named conversions (the registry keeps them), as Plausible has them: an event
goal (an event's name) or a page goal (a pageview of a path pattern, ``*`` wildcards).

A goal is a filter on properties every store already answers (event:name, event:page), so
goals need nothing of the stores: ``event:goal`` conditions are rewritten into those filters,
and a breakdown by ``event:goal`` is one question per goal (a hit may complete several goals,
and counts for each). ``conversion_rate``: the share of the visitors (under the query's other
filters, per group of its other dimensions) who completed the goal, in percent.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from serving.analytics.query import GOAL, Condition, Junction, Negation, Query, conditions, ordered, wildcard_regex
from serving.query import QueryError

MAX_GOALS = 50  # per site: a breakdown by goal asks one question per goal
NOTHING = Condition("is", "event:name", ("",))  # no hit has an empty name


@dataclass(frozen=True)
class Goal:
    event: str = ""  # an event goal: the event's name
    page: str = ""  # a page goal: a path pattern, * wildcards

    @property
    def name(self) -> str:
        """How the API names it: the event, or "Visit <pattern>" (Plausible's names)."""
        return self.event or f"Visit {self.page}"

    def filter(self):
        """The hits that complete it."""
        if self.event:
            return Condition("is", "event:name", (self.event,))
        return Junction(
            "and",
            (
                Condition("is", "event:name", ("pageview",)),
                Condition("matches", "event:page", (wildcard_regex(self.page),)),
            ),
        )


def _named(goals: list[Goal], condition: Condition) -> list[Goal]:
    """The goals a condition on event:goal names (by their names, as any property's values)."""
    op = condition.op.removesuffix("_not")
    if op == "is":
        unknown = [v for v in condition.values if v not in {g.name for g in goals}]
        if unknown:
            known = ", ".join(repr(g.name) for g in goals) or "none yet (`pixel goals create`)"
            raise QueryError(f"no goal {unknown[0]!r} on this site; its goals: {known}")
        return [g for g in goals if g.name in condition.values]
    if op == "contains":
        return [g for g in goals if any(v in g.name for v in condition.values)]
    return [g for g in goals if any(re.search(v, g.name) for v in condition.values)]


def expand(node, goals: list[Goal]):
    """A filter tree with every event:goal condition rewritten into its goals' filters."""
    if isinstance(node, Junction):
        return Junction(node.op, tuple(expand(child, goals) for child in node.children))
    if isinstance(node, Negation):
        return Negation(expand(node.child, goals))
    if isinstance(node, Condition) and node.prop == GOAL:
        named = _named(goals, node)
        # No goal named: nothing completes it (an event name no hit can have).
        completes = Junction("or", tuple(g.filter() for g in named)) if named else NOTHING
        return Negation(completes) if node.op.endswith("_not") else completes
    return node


def without_goals(node):
    """The filter tree with its event:goal conditions left out (None if nothing is left)."""
    if isinstance(node, Condition):
        return None if node.prop == GOAL else node
    if isinstance(node, Negation):
        child = without_goals(node.child)
        return Negation(child) if child is not None else None
    if isinstance(node, Junction):
        children = tuple(c for c in (without_goals(child) for child in node.children) if c is not None)
        if not children:
            return None
        return children[0] if len(children) == 1 else Junction(node.op, children)
    return node


def _and(*nodes):
    nodes = tuple(n for n in nodes if n is not None)
    return None if not nodes else nodes[0] if len(nodes) == 1 else Junction("and", nodes)


def uses_goals(query: Query) -> bool:
    return GOAL in query.dimensions or any(c.prop == GOAL for c in conditions(query.filters))


Run = Callable[[Query], tuple[list[dict], dict]]


def answer_with_goals(query: Query, goals: list[Goal], run: Run) -> tuple[list[dict], dict]:
    """Plausible's results for a query naming goals, from ``run`` (the engine's answer to a query
    on plain properties): per goal when broken down by event:goal, then conversion rates."""
    if len(goals) > MAX_GOALS:
        raise QueryError(f"a site has at most {MAX_GOALS} goals")
    metrics = tuple(m for m in query.metrics if m != "conversion_rate")
    wants_rate = "conversion_rate" in query.metrics
    asked = metrics + (("visitors",) if wants_rate and "visitors" not in metrics else ())
    base = replace(query, metrics=asked, order_by=(), limit=10_000, offset=0, comparison=None)
    if GOAL not in query.dimensions:
        rows, meta = run(replace(base, filters=expand(query.filters, goals)))
        keyed = {tuple(r["dimensions"]): r["metrics"] for r in rows}
    else:
        at = query.dimensions.index(GOAL)
        others = tuple(d for d in query.dimensions if d != GOAL)
        keyed, meta = {}, None
        for goal in [g for g in goals if _allows(query.filters, g, goals)]:
            filters = _and(expand(query.filters, goals), goal.filter())
            rows, meta = run(replace(base, dimensions=others, filters=filters))
            for r in rows:
                key = list(r["dimensions"])
                key.insert(at, goal.name)
                keyed[tuple(key)] = r["metrics"]
        if meta is None:  # no goal to ask about: still the answer's meta (its views, its seam)
            _, meta = run(replace(base, dimensions=(), metrics=("events",), filters=NOTHING))
    if wants_rate:
        others = tuple(d for d in query.dimensions if d != GOAL)
        totals, _ = run(replace(base, dimensions=others, metrics=("visitors",), filters=without_goals(query.filters)))
        total = {tuple(r["dimensions"]): r["metrics"][0] for r in totals}
        goal_at = query.dimensions.index(GOAL) if GOAL in query.dimensions else None
        v = asked.index("visitors")
        for key, values in keyed.items():
            rest = tuple(k for i, k in enumerate(key) if i != goal_at)
            values.append(round(100 * values[v] / total[rest], 2) if total.get(rest) else 0)
        asked = (*asked, "conversion_rate")
    order = ordered(keyed, asked, query)
    results = [
        {"dimensions": list(key), "metrics": [keyed[key][asked.index(m)] for m in query.metrics]} for key in order
    ]
    if query.total_rows:
        meta["total_rows"] = len(keyed)
    return results[query.offset : query.offset + query.limit], meta


def _allows(filters, goal: Goal, goals: list[Goal]) -> bool:
    """Does the query's own goal filter let this goal's row in (a breakdown by goal under
    `event:goal is [...]` shows those goals only)?"""
    goal_conditions = [c for c in conditions(filters) if c.prop == GOAL]
    return all((goal in _named(goals, c)) != c.op.endswith("_not") for c in goal_conditions)
