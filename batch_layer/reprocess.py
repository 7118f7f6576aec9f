"""Re-running closed days with today's rules (after a bot list, geo database, table or code
change): `pixel reprocess --from D1 --to D2`. Each day is closed again by the nightly job's own
run (its outputs replaced whole, its lineage recorded); the run summaries before and after say
what changed per day. The serving process sees each day's new run at its next sync, loads it
into its stores and logs the day's restatement per site (serving.store.restatements)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass

from core.lake import layout
from core.lake.storage import Storage
from core.lake.watermark import read_watermark

COUNTS = ("read", "clean", "bots", "duplicates", "bad")
RULES = ("code", "ua_parser", "bot_list", "geo_db", "tables")


class NotClosed(ValueError):
    """A day to reprocess that was never closed: `pixel batch` closes it."""


@dataclass(frozen=True)
class DayChange:
    day: dt.date
    before: dict[str, int]
    after: dict[str, int]
    rules: list[str]  # the lineage parts that differ (code, ua_parser, bot_list, geo_db, tables)

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _counts(summary: dict) -> dict[str, int]:
    out = {key: summary.get(key, 0) for key in COUNTS if key != "bad"}
    return out | {"bad": sum(summary.get("bad", {}).values())}


def _summary(storage: Storage, day: dt.date) -> dict | None:
    path = layout.run_summary(day)
    return json.loads(storage.read(path)) if storage.exists(path) else None


def reprocess(storage: Storage, days: list[dt.date], run: Callable[[list[dt.date]], object]) -> list[DayChange]:
    """Close ``days`` again with ``run`` (the nightly job's); per day, what changed."""
    watermark = read_watermark(storage)
    before = {day: _summary(storage, day) for day in days}
    never = [str(day) for day, summary in before.items() if summary is None or watermark is None or day > watermark]
    if never:
        raise NotClosed(f"{', '.join(never)} never closed: close with `pixel batch --date D` first")
    run(days)
    changes = []
    for day in days:
        old, new = before[day], _summary(storage, day) or {}
        rules = [key for key in RULES if old.get("lineage", {}).get(key) != new.get("lineage", {}).get(key)]
        changes.append(DayChange(day, _counts(old), _counts(new), rules))
    return changes
