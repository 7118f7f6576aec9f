"""Whole visitors, sums per view key, and the daily view's numbers (pageviews, exact visitor
counts, visitor sketches). Pure functions over Arrow tables (and DataSketches).

The input is a visitor's hits together: sorted by (visitor_id, site, ...), as the batch job's
per-visitor shuffle hands them over, in batches of any size (a visitor's hits may straddle two
batches). A visitor is a (visitor_id, site) pair: ids are per site.

Counting distinct visitors here, where each visitor's hits are together, is a pass over
integers; Spark did it as a hash aggregation of every (site, visitor, dimension, value) string
key (~5 per hit). Counts of different partitions add up and their sketches unite: a visitor
lives in one partition.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from events.aggregate import BOTS, DIMENSIONS, VIEW_KEYS
from events.schema import arrow_schema
from events.sketches import VisitorSketch
from events.visits import new_visitor

# What DailyCounts returns: the daily view's numbers of a partition of whole visitors.
DAILY_COUNTS_SCHEMA: list[tuple[str, str]] = [
    ("site", "string"),
    ("dimension", "string"),  # one of DIMENSIONS, or BOTS
    ("value", "string"),
    ("pageviews", "long"),  # hits
    ("visitors", "long"),  # distinct known visitor ids (not null, not "")
    ("visitors_hll", "binary"),  # the same ids' sketch (events.sketches: compact, not base64'd)
]
DAILY_COUNTS_ARROW = arrow_schema(DAILY_COUNTS_SCHEMA)
_NUMBERS_ARROW = arrow_schema(DAILY_COUNTS_SCHEMA[:-1])


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
        return pa.table(
            {name: summed.column(name if name in VIEW_KEYS else f"{name}_sum") for name in self._schema.names}
        ).cast(self._schema)


class DailyCounts:
    """The daily view's numbers per (site, dimension, value) of whole visitors' hits, added a
    table of whole visitors at a time (``new_visitor``: where each starts): pageviews, exact
    visitors, and the visitors' sketch; bot hits in the BOTS dimension (value ""), as the daily
    view counts them.

    A visitor's id goes into a key's sketch once, however many hits it has there. Spark made the
    sketches before, in an aggregation of every hit exploded by dimension keyed by strings (a
    1M-event day: 2.7 s of two cores, the views' slowest step); here the pairs are found with
    integers and only the sketch updates are per pair (~0.3 us each: the bench's day, whose
    visitors have few hits, makes ~5 per hit)."""

    def __init__(self) -> None:
        self._numbers = ValueSums(_NUMBERS_ARROW)
        self._sketches: dict[tuple[str | None, str, str | None], VisitorSketch] = {}

    def add(self, hits: pa.Table, new_visitor: np.ndarray) -> None:
        visitor = np.cumsum(new_visitor) - 1  # the hit's visitor, numbered from 0
        firsts = np.flatnonzero(new_visitor)
        site, site_names = _codes(hits.column("site").take(firsts))  # per visitor
        ids = hits.column("visitor_id").take(firsts).to_numpy(zero_copy_only=False)  # per visitor
        known = pc.fill_null(pc.not_equal(hits.column("visitor_id"), ""), False).to_numpy(zero_copy_only=False)
        bot = pc.fill_null(hits.column("is_bot"), False).to_numpy(zero_copy_only=False)
        parts = []
        for dimension, column in [*DIMENSIONS.items(), (BOTS, "")]:
            rows = np.flatnonzero(bot if dimension == BOTS else ~bot)
            if not len(rows):
                continue
            if column:
                value, value_names = _codes(hits.column(column).take(rows))
            else:
                value, value_names = np.zeros(len(rows), dtype=np.int64), pa.array([""])
            width = len(value_names)
            keys, pageviews = np.unique(site[visitor[rows]] * width + value, return_counts=True)
            is_known = known[rows]
            seen = rows[is_known]
            # Each (key, visitor) once, in key order: key i's visitors are pairs[bounds[i]:bounds[i + 1]].
            pairs = np.unique((site[visitor[seen]] * width + value[is_known]) * len(ids) + visitor[seen])
            bounds = np.append(np.searchsorted(pairs // len(ids), keys), len(pairs))
            sites, values = site_names.take(keys // width), value_names.take(keys % width)
            self._update_sketches(dimension, sites, values, ids[pairs % len(ids)].tolist(), bounds)
            parts.append(
                pa.table(
                    {
                        "site": sites,
                        "dimension": pa.repeat(pa.scalar(dimension), len(keys)),
                        "value": values,
                        "pageviews": pageviews.astype(np.int64),
                        "visitors": np.diff(bounds).astype(np.int64),
                    }
                )
            )
        if parts:
            self._numbers.add(pa.concat_tables(parts))

    def result(self) -> pa.Table:
        """DAILY_COUNTS_SCHEMA rows of every hit added."""
        numbers = self._numbers.result()
        keys = zip(*(numbers.column(name).to_pylist() for name in VIEW_KEYS))
        sketches = pa.array([self._sketches[key].serialize() for key in keys], pa.binary())
        return numbers.append_column(DAILY_COUNTS_ARROW.field("visitors_hll"), sketches).cast(DAILY_COUNTS_ARROW)

    def _update_sketches(
        self, dimension: str, sites: pa.Array, values: pa.Array, ids: list[str], bounds: np.ndarray
    ) -> None:
        """Key i of the dimension (sites[i], values[i]) saw the visitors ids[bounds[i]:bounds[i + 1]]."""
        for site, value, start, end in zip(
            sites.to_pylist(), values.to_pylist(), bounds[:-1].tolist(), bounds[1:].tolist()
        ):
            if (sketch := self._sketches.get((site, dimension, value))) is None:
                sketch = self._sketches[(site, dimension, value)] = VisitorSketch()
            sketch.update_all(ids[start:end])


def _codes(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """Each value's number (int64) and the values by number, with a last one for null (the
    number nulls get)."""
    encoded = pc.dictionary_encode(values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values)
    names = encoded.dictionary.cast(pa.string())
    codes = encoded.indices.fill_null(len(names)).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, pa.concat_arrays([names, pa.nulls(1, pa.string())])
