"""Visits (sessions): a visitor's hits on a site split by SESSION_GAP_MS of inactivity, summed per
(site, dimension, value) of the visit's entry hit. Pure functions over Arrow tables.

The input is whole visitors' hits together and in time order: sorted by (visitor_id, site, ts,
and a tie-break), as the batch job's per-visitor shuffle hands them over, cut into whole visitors by
batch_layer.views.daily_counts.WholeVisitors (batch_layer.views.one_pass runs it beside the visitor counts).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from events.aggregate import DIMENSION_COLUMNS, DIMENSIONS, SESSIONS_SCHEMA, VIEW_KEYS
from events.schema import arrow_schema
from events.visits import new_visit

SESSIONS_ARROW = arrow_schema(SESSIONS_SCHEMA)
SUM_COLUMNS = [name for name, _ in SESSIONS_SCHEMA if name not in VIEW_KEYS]  # visits, bounces, ...


def visit_sums(hits: pa.Table, new_visitor: np.ndarray) -> pa.Table:
    """Hits of whole visitors in time order (``new_visitor``: where each visitor starts) -> a row
    per visit and dimension: (site, dimension, the visit's entry value, SUM_COLUMNS), to be
    summed per (site, dimension, value) (batch_layer.views.one_pass)."""
    return _by_dimension(_visit_rows(hits, new_visitor))


def _visit_rows(hits: pa.Table, new_visitor: np.ndarray) -> pa.Table:
    """Hits of whole visitors (``new_visitor``: where each starts) -> one row per visit: its
    site, entry values, pageviews, duration."""
    ts = hits.column("ts").to_numpy()
    starts = np.flatnonzero(new_visit(new_visitor, ts))
    ends = np.append(starts[1:], len(ts))
    pageviews = ends - starts
    columns = {name: hits.column(name).take(starts) for name in ["site", *DIMENSION_COLUMNS]}
    columns.update(
        visits=np.ones(len(starts), dtype=np.int64),
        bounces=(pageviews == 1).astype(np.int64),
        pageviews=pageviews,
        duration_ms=ts[ends - 1] - ts[starts],
    )
    return pa.table(columns)


def _by_dimension(visits: pa.Table) -> pa.Table:
    """Visit rows -> a row per visit and dimension: (site, dimension, entry value, sums)."""
    n = visits.num_rows
    return pa.concat_tables(
        [
            pa.table(
                {
                    "site": visits.column("site"),
                    "dimension": pa.repeat(pa.scalar(dim), n),
                    "value": visits.column(column) if column else pa.repeat(pa.scalar(""), n),
                    **{name: visits.column(name) for name in SUM_COLUMNS},
                }
            )
            for dim, column in DIMENSIONS.items()
        ]
    )
