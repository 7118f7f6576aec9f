"""Visits (sessions): where a visitor starts and where each of their visits starts. Pure, over
hits sorted by (visitor, site, ts): the batch job's per-visitor pass and the serving store's
loader both cut visits here, so they can't disagree.

A visitor is a (visitor_id, site) pair: ids are per site. A visit ends after SESSION_GAP_MS of
inactivity; visitor ids rotate with the daily salt, so a visit never spans two days.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from events.aggregate import SESSION_GAP_MS


def new_visitor(hits: pa.Table) -> np.ndarray:
    """Per hit: is it the first of its visitor in the table? (null ids are one visitor, as
    Spark groups them)"""
    first = np.zeros(hits.num_rows, dtype=bool)
    first[:1] = True
    for name in ("visitor_id", "site"):
        column = hits.column(name).combine_chunks()
        before, after = column.slice(0, len(column) - 1), column.slice(1)
        changed = pc.and_not(
            pc.not_equal(after, before).fill_null(True), pc.and_(pc.is_null(after), pc.is_null(before))
        )
        first[1:] |= changed.to_numpy(zero_copy_only=False)
    return first


def new_visit(new_visitor: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Per hit of whole visitors in time order: does a visit start here? With each visitor, and
    after more than SESSION_GAP_MS without a hit."""
    starts = new_visitor.copy()
    starts[1:] |= np.diff(ts) > SESSION_GAP_MS
    return starts
