"""The restatement log: each time the serving process loads a closed day into its store (the
nightly job closed it, or ran it again), it records per site what it answered for the day before
(the speed layer's live numbers, or the earlier run's final ones) and what it answers after.

    views/_restatements/<hash of site>.jsonl    one JSON line per load of a day, per site

One file per site, so a site's question reads its own log only. A day the serving process never
answered (no live numbers: loaded from history) restates nothing and is not logged.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable

from core.lake import layout
from core.lake.storage import Storage

# What the serving process answers for a day, per site: (pageviews, visitors); ``final``: its
# closed days' store holds the day.
DayNumbers = Callable[[dt.date, bool], dict[str, tuple[int, int]]]


def pct(before: int, after: int) -> float | None:
    return None if before == 0 else round(100.0 * (after - before) / before, 1)


def record(
    storage: Storage,
    day: dt.date,
    before: dict[str, tuple[int, int]],
    after: dict[str, tuple[int, int]],
    source: str,
    run: str,
    now_ms: int | None = None,
) -> int:
    """Append the day's restatement to each site's log; ``source``: what ``before`` was ("live",
    or "final" for a re-run). Returns the sites logged."""
    if not before:
        return 0
    at = int(time.time() * 1000) if now_ms is None else now_ms
    for site in sorted(set(before) | set(after)):
        (pv0, v0), (pv1, v1) = before.get(site, (0, 0)), after.get(site, (0, 0))
        line = {"date": str(day), "site": site, "source": source, "run": run, "at": at}
        line |= {"before": {"pageviews": pv0, "visitors": v0}, "after": {"pageviews": pv1, "visitors": v1}}
        path = layout.restatement_log(site)
        old = storage.read(path) if storage.exists(path) else b""
        storage.write_atomic(path, old + json.dumps(line).encode() + b"\n")
    return len(set(before) | set(after))


def _lines(storage: Storage, path: str, keep: Callable[[dict], bool]) -> list[dict]:
    """A log's lines that ``keep`` keeps, each with its differences (absolute and %)."""
    out = []
    for raw in storage.read(path).splitlines():
        line = json.loads(raw)
        if keep(line):
            before, after = line["before"], line["after"]
            line["difference"] = {m: after[m] - before[m] for m in ("pageviews", "visitors")}
            line["change_pct"] = {m: pct(before[m], after[m]) for m in ("pageviews", "visitors")}
            out.append(line)
    return out


def read(storage: Storage, site: str, first: dt.date, last: dt.date) -> list[dict]:
    """The site's restatements of the days [first, last], by day then time."""
    path = layout.restatement_log(site)
    if not storage.exists(path):
        return []
    lines = _lines(storage, path, lambda line: line["site"] == site and str(first) <= line["date"] <= str(last))
    return sorted(lines, key=lambda r: (r["date"], r["at"]))


def read_day(storage: Storage, day: dt.date) -> list[dict]:
    """Every site's restatements of one day (an operator's view: reads every site's log)."""
    lines = []
    for path in storage.list_files(layout.RESTATEMENTS):
        lines += _lines(storage, path, lambda line: line["date"] == str(day))
    return sorted(lines, key=lambda r: (-r["after"]["pageviews"], r["site"], r["at"]))
