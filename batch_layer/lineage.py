"""What made a closed day: the code and the rules' versions, the inputs, the run. The nightly job
records it in the day's run summary (``lineage``) and, but for the run's end and counts (known
after they are written), in each clean Parquet file's key-value metadata (``pixel.lineage``), so
a file read on its own says where it came from. `pixel lineage --date D` prints it.

    code       the package's version and the git commit it ran from ("" outside a checkout)
    ua_parser  ua-parser's version and its regexes' (ua-parser-builtins: uap-core's build)
    bot_list   is-bot's version and a hash of its patterns; the operator's own bot patterns
    geo_db     the IP location database's build (events.geo)
    tables     a hash of each rule table (referrers, channels)
    inputs     the raw folders read: files and bytes
    run        start and end (UTC), seconds
    summary    the day's counts (read, bad, duplicates, bots, clean, sites)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import subprocess
from functools import lru_cache
from pathlib import Path

from events.geo import database_build
from events.rules import Rules

PACKAGE = "pixel-analytics"
ROOT = Path(__file__).resolve().parents[1]
TABLES = ROOT / "events" / "data"
PARQUET_KEY = b"pixel.lineage"
SUMMARY_KEYS = ("read", "late", "bad", "duplicates", "bots", "clean", "sites")


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return ""


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit the code runs from (its checkout), "" when there is none."""
    try:
        done = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def rules(own: Rules) -> dict:
    """The code and the rules' versions (``own``: the operator's rules, settings): the same for
    every day a run closes."""
    from is_bot import Bots

    patterns = sorted(Bots().patterns)  # what events.useragent matches
    return {
        "code": {"version": _version(PACKAGE), "commit": git_commit()},
        "ua_parser": {"version": _version("ua-parser"), "regexes": _version("ua-parser-builtins")},
        "bot_list": {
            "version": _version("is-bot"),
            "patterns": _sha("\n".join(patterns).encode()),
            "own_patterns": list(own.bot_user_agents),
        },
        "geo_db": database_build(),
        "tables": {path.name: _sha(path.read_bytes()) for path in sorted(TABLES.glob("*.csv"))},
    }


def inputs(file_sizes: dict[str, int]) -> dict:
    return {"files": len(file_sizes), "bytes": sum(file_sizes.values())}


def run(started: dt.datetime, ended: dt.datetime | None = None) -> dict:
    out = {"started": started.isoformat(timespec="seconds")}
    if ended is not None:
        out |= {"ended": ended.isoformat(timespec="seconds"), "seconds": round((ended - started).total_seconds(), 2)}
    return out


def summary_of(counts: dict) -> dict:
    return {key: counts[key] for key in SUMMARY_KEYS if key in counts}
