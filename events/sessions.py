"""Visits (sessions): a visitor's hits on a site split by SESSION_GAP_MS of inactivity, summed per
(site, dimension, value) of the visit's entry hit. Pure functions over Arrow tables.

The input is a visitor's hits together and in time order: sorted by (visitor_id, site, ts, and
a tie-break), as the batch job's per-visitor checkpoint holds them. ``SessionSums`` takes such rows
in batches of any size (a visitor's hits may straddle two batches) and sums as it goes.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa

from events.aggregate import DIMENSION_COLUMNS, DIMENSIONS, SESSION_GAP_MS, SESSIONS_SCHEMA, VIEW_KEYS
from events.enrich import arrow_schema
from events.visitors import ValueSums, WholeVisitors

SESSIONS_ARROW = arrow_schema(SESSIONS_SCHEMA)
SUM_COLUMNS = [name for name, _ in SESSIONS_SCHEMA if name not in VIEW_KEYS]  # visits, bounces, ...
# The hit columns visits need: who, when, and what each dimension's value is.
HIT_COLUMNS = ["visitor_id", "site", "ts", *DIMENSION_COLUMNS]


class SessionSums:
    """Sums of visits per (site, dimension, value), fed hits batch by batch."""

    def __init__(self) -> None:
        self._visitors = WholeVisitors(HIT_COLUMNS)
        self._sums = ValueSums(SESSIONS_ARROW)

    def add(self, hits: pa.Table) -> None:
        if whole := self._visitors.add(hits):
            self._sums.add(_by_dimension(_visit_rows(*whole)))

    def result(self) -> pa.Table:
        """The sums of every hit added (call once, after the last batch)."""
        if whole := self._visitors.rest():
            self._sums.add(_by_dimension(_visit_rows(*whole)))
        return self._sums.result()


def session_sums(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Batches of hits (in the order above) -> their sums per (site, dimension, value): the
    batch job's mapInArrow function (one call per partition, whole visitors per partition)."""
    sums = SessionSums()
    for batch in batches:
        sums.add(pa.Table.from_batches([batch]))
    yield from sums.result().to_batches()


def _visit_rows(hits: pa.Table, new_visitor: np.ndarray) -> pa.Table:
    """Hits of whole visitors (``new_visitor``: where each starts) -> one row per visit: its
    site, entry values, pageviews, duration."""
    ts = hits.column("ts").to_numpy()
    new_visit = new_visitor.copy()
    new_visit[1:] |= np.diff(ts) > SESSION_GAP_MS
    starts = np.flatnonzero(new_visit)
    ends = np.append(starts[1:], len(ts))
    pageviews = ends - starts
    columns = {name: hits.column(name).take(starts) for name in ["site", *DIMENSION_COLUMNS]}
    columns.update(visits=np.ones(len(starts), dtype=np.int64), bounces=(pageviews == 1).astype(np.int64),
                   pageviews=pageviews, duration_ms=ts[ends - 1] - ts[starts])
    return pa.table(columns)


def _by_dimension(visits: pa.Table) -> pa.Table:
    """Visit rows -> a row per visit and dimension: (site, dimension, entry value, sums)."""
    n = visits.num_rows
    return pa.concat_tables([
        pa.table({"site": visits.column("site"), "dimension": pa.repeat(pa.scalar(dim), n),
                  "value": visits.column(column) if column else pa.repeat(pa.scalar(""), n),
                  **{name: visits.column(name) for name in SUM_COLUMNS}})
        for dim, column in DIMENSIONS.items()])
