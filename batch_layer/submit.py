"""The batch job's entry point for spark-submit and the nightly scheduler: close one day or a range.

    spark-submit [--master spark://host:7077] batch_layer/submit.py --date D | --from D1 --to D2
    python -m batch_layer.submit --date D | --from D1 --to D2

Settings come from the PIXEL_* environment. Prints one JSON summary line per closed day.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import asdict

from batch_layer.schedule import DayRangeError, days_to_run
from core.logs import setup_logging
from core.settings import Settings

log = logging.getLogger("batch")


def run_days(
    settings: Settings,
    days: list[dt.date],
    on_stage: Callable[[dt.date, str], None] = lambda _d, _s: None,
    on_day_done: Callable[[dt.date], None] = lambda _d: None,
) -> list:
    """Close ``days`` in order in one Spark session; returns their summaries (batch_layer.job.DaySummary)."""
    from batch_layer.job import run_day
    from batch_layer.spark import spark_session

    spark = spark_session(settings)
    summaries = []
    for day in days:
        summaries.append(run_day(spark, settings, day, stage=lambda s, day=day: on_stage(day, s)))
        on_day_done(day)
    return summaries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="batch_layer/submit.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--date", help="the UTC day to close, YYYY-MM-DD (default: the last closable day)")
    parser.add_argument("--from", dest="first", help="first day of a range (with --to)")
    parser.add_argument("--to", dest="last", help="last day of a range, inclusive")
    args = parser.parse_args(argv)
    setup_logging("batch")
    settings = Settings()
    try:
        days = days_to_run(args.date, args.first, args.last, dt.datetime.now(dt.UTC), settings.batch_lateness_hours)
    except DayRangeError as exc:
        parser.error(str(exc))
    for summary in run_days(settings, days, on_stage=lambda day, stage: log.info("%s: %s", day, stage)):
        log.info(
            "closed %s: read %d (late %d), bad %d (%s), duplicates %d, bots %d, clean %d, sites %d, %.1f s",
            summary.date,
            summary.read,
            summary.late,
            summary.bad_total,
            ", ".join(f"{reason} {n}" for reason, n in sorted(summary.bad.items())) or "none",
            summary.duplicates,
            summary.bots,
            summary.clean,
            summary.sites,
            summary.seconds,
        )
        print(json.dumps(asdict(summary)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
