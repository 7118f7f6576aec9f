"""A visit's channel (Plausible's channel groups: Direct, Organic Search, Paid Search, Organic
Social, Paid Social, Email, Referral, Affiliates, Display, ...) from its entry hit, by the
data-driven table events/data/channels.csv (the first matching row wins)."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from events.urls import source_classes

CONDITIONS = ("source_class", "source", "medium", "campaign", "click_id")


class Rule(NamedTuple):
    channel: str
    tests: tuple[tuple[int, Callable[[str], bool]], ...]  # (index in CONDITIONS, test of the value)


def _test(cell: str) -> Callable[[str], bool]:
    if cell.startswith("~"):
        pattern = re.compile(cell[1:], re.IGNORECASE)
        return lambda value: pattern.search(value) is not None
    choices = frozenset(c.strip().lower() for c in cell.split("|"))
    return lambda value: value.lower() in choices


def _load() -> tuple[Rule, ...]:
    with open(Path(__file__).parent / "data" / "channels.csv", newline="") as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        return tuple(
            Rule(row["channel"], tuple((i, _test(row[name])) for i, name in enumerate(CONDITIONS) if row[name]))
            for row in rows
        )


RULES = _load()
CHANNELS = tuple(dict.fromkeys(rule.channel for rule in RULES))
_NAMED_CLASSES = source_classes()  # "google" -> "search", "facebook" -> "social", ...


@lru_cache(maxsize=65536)
def channel_of(source: str, source_class: str, medium: str, campaign: str, click_id: str) -> str:
    """The channel of a visit whose entry hit has these values (see events.enrich.source_of)."""
    values = (_NAMED_CLASSES.get(source.lower(), source_class), source, medium, campaign, click_id)
    for rule in RULES:
        if all(test(values[i]) for i, test in rule.tests):
            return rule.channel
    return "Unassigned"
