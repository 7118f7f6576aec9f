"""Whole visitors, sums per view key, and the daily view's exact visitor counts. Pure functions
over Arrow tables.

The input is a visitor's hits together: sorted by (visitor_id, site, ...), as the batch job's
per-visitor checkpoint holds them, in batches of any size (a visitor's hits may straddle two
batches). A visitor is a (visitor_id, site) pair: ids are per site.

Counting distinct visitors here, where each visitor's hits are together, is a pass over
integers; Spark did it as a hash aggregation of every (site, visitor, dimension, value) string
key (~5 per hit). Counts of different partitions of the checkpoint add up: a visitor lives in
one partition.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from events.aggregate import BOTS, DIMENSION_COLUMNS, DIMENSIONS, VIEW_KEYS
from events.enrich import arrow_schema

# What visitor_counts returns.
VISITOR_COUNTS_SCHEMA: list[tuple[str, str]] = [
    ("site", "string"),
    ("dimension", "string"),  # one of DIMENSIONS, or BOTS
    ("value", "string"),
    ("visitors", "long"),  # distinct known visitor ids (not null, not "")
]
VISITOR_COUNTS_ARROW = arrow_schema(VISITOR_COUNTS_SCHEMA)


def new_visitor(hits: pa.Table) -> np.ndarray:
    """Per hit: is it the first of its visitor in the table? (null ids are one visitor, as
    Spark groups them)"""
    first = np.zeros(hits.num_rows, dtype=bool)
    first[:1] = True
    for name in ("visitor_id", "site"):
        column = hits.column(name).combine_chunks()
        before, after = column.slice(0, len(column) - 1), column.slice(1)
        changed = pc.and_not(pc.not_equal(after, before).fill_null(True), pc.and_(pc.is_null(after), pc.is_null(before)))
        first[1:] |= changed.to_numpy(zero_copy_only=False)
    return first


class WholeVisitors:
    """Cuts batches of hits into tables of whole visitors: each batch's last visitor is held
    back until the next batch (or the end) shows where it ends."""

    def __init__(self, columns: list[str]) -> None:
        self._columns = columns
        self._carry: pa.Table | None = None  # the last visitor's hits so far (may go on)

    def add(self, hits: pa.Table) -> tuple[pa.Table, np.ndarray] | None:
        """The whole visitors these hits complete, with where each starts (new_visitor)."""
        hits = hits.select(self._columns)
        if self._carry is not None:
            hits = pa.concat_tables([self._carry, hits])
        if not hits.num_rows:
            return None
        first = new_visitor(hits)
        last = int(np.flatnonzero(first)[-1])  # where the last visitor starts: it may go on
        self._carry = hits.slice(last)
        return (hits.slice(0, last), first[:last]) if last else None

    def rest(self) -> tuple[pa.Table, np.ndarray] | None:
        """The visitor held back, once the last batch is in."""
        carry, self._carry = self._carry, None
        return (carry, new_visitor(carry)) if carry is not None and carry.num_rows else None


class ValueSums:
    """Rows of (VIEW_KEYS, numbers) added up per key as they come: each part summed as it is
    added, and the parts summed together every 64 (so that they stay small)."""

    def __init__(self, schema: pa.Schema) -> None:
        self._schema, self._parts = schema, []
        self._sums = [name for name in schema.names if name not in VIEW_KEYS]

    def add(self, rows: pa.Table) -> None:
        self._parts.append(self._summed(rows))
        if len(self._parts) > 64:
            self._parts = [self.result()]

    def result(self) -> pa.Table:
        """The sums of every row added."""
        return self._summed(pa.concat_tables(self._parts)) if self._parts else self._schema.empty_table()

    def _summed(self, rows: pa.Table) -> pa.Table:
        summed = rows.group_by(VIEW_KEYS, use_threads=False).aggregate([(name, "sum") for name in self._sums])
        return pa.table({name: summed.column(name if name in VIEW_KEYS else f"{name}_sum")
                         for name in self._schema.names}).cast(self._schema)


def visitor_counts(hits: pa.Table, new_visitor: np.ndarray) -> pa.Table:
    """Distinct known visitors (id not null, not "") per (site, dimension, value) of these whole
    visitors (``new_visitor``: where each starts); bot hits in the BOTS dimension (value ""),
    as the daily view counts them."""
    visitor = np.cumsum(new_visitor) - 1  # the hit's visitor, numbered from 0
    site, site_names = _codes(hits.column("site").take(np.flatnonzero(new_visitor)))  # per visitor
    known = pc.fill_null(pc.not_equal(hits.column("visitor_id"), ""), False).to_numpy(zero_copy_only=False)
    bot = pc.fill_null(hits.column("is_bot"), False).to_numpy(zero_copy_only=False)
    parts = []
    for dimension, column in [*DIMENSIONS.items(), (BOTS, "")]:
        rows = np.flatnonzero(known & (bot if dimension == BOTS else ~bot))
        if not len(rows):
            continue
        if column:
            value, value_names = _codes(hits.column(column).take(rows))
        else:
            value, value_names = np.zeros(len(rows), dtype=np.int64), pa.array([""])
        width = len(value_names)
        pairs = np.unique(visitor[rows] * width + value)  # each (visitor, value) once
        keys, visitors = np.unique(site[pairs // width] * width + pairs % width, return_counts=True)
        parts.append(pa.table({
            "site": site_names.take(keys // width), "dimension": pa.repeat(pa.scalar(dimension), len(keys)),
            "value": value_names.take(keys % width), "visitors": visitors.astype(np.int64)}))
    return pa.concat_tables(parts) if parts else VISITOR_COUNTS_ARROW.empty_table()


def _codes(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """Each value's number (int64) and the values by number, with a last one for null (the
    number nulls get)."""
    encoded = pc.dictionary_encode(values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values)
    names = encoded.dictionary.cast(pa.string())
    codes = encoded.indices.fill_null(len(names)).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, pa.concat_arrays([names, pa.nulls(1, pa.string())])
