"""The batch views' one pass over a partition of whole visitors: pageviews, exact visitor counts
and visitor sketches (daily view) and visit sums (sessions view) together. Pure, over Arrow tables.

The input is hits sorted by (visitor_id, site, ts, a tie-break), as the batch job's per-visitor
shuffle hands them over, in batches of any size (WholeVisitors cuts them into whole visitors).
One pass for both views, because each pass converts the partition to Arrow (~0.5 s per 1M events).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from batch_layer.views.daily_counts import DAILY_COUNTS_SCHEMA, DailyCounts, ValueSums, WholeVisitors
from batch_layer.views.visits import SESSIONS_ARROW, SUM_COLUMNS, visit_sums
from events.aggregate import DIMENSION_COLUMNS
from events.schema import arrow_schema
from events.visits import new_visitor

# What view_sums reads: who, when, bot or not, and what each dimension's value is.
PASS_COLUMNS = ["visitor_id", "site", "ts", "is_bot", *DIMENSION_COLUMNS]
# What it returns, per (site, dimension, value): the daily view's numbers (DAILY_COUNTS_SCHEMA:
# pageviews, exact known visitors, their sketch; bots in their own dimension), and the visit sums
# of visits entering on that value (humans only; ``visit_pageviews`` is the sessions view's
# ``pageviews``). A row carries one or the other (the other null): Spark adds them up per key
# (and unites the sketches).
_VISIT_NAMES = {name: f"visit_{name}" if name == "pageviews" else name for name in SUM_COLUMNS}
VISIT_SUM_COLUMNS = list(_VISIT_NAMES.values())
VIEW_SUMS_SCHEMA: list[tuple[str, str]] = [
    *DAILY_COUNTS_SCHEMA,
    *((name, "long") for name in VISIT_SUM_COLUMNS),  # visits, bounces, visit_pageviews, duration_ms
]
VIEW_SUMS_ARROW = arrow_schema(VIEW_SUMS_SCHEMA)


def view_sums(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Batches of hits (PASS_COLUMNS, in the order above) -> VIEW_SUMS_SCHEMA rows: the batch
    job's mapInArrow function (one call per partition of whole visitors)."""
    whole, daily, visits = WholeVisitors(PASS_COLUMNS), DailyCounts(), ValueSums(SESSIONS_ARROW)

    def add(hits: pa.Table, starts) -> None:
        daily.add(hits, starts)
        # Visits are of people. Hits without a visitor id are one "visitor" and may mix bots and
        # people, so where each visitor starts is found again among the people's hits.
        people = hits.filter(pc.invert(pc.fill_null(hits.column("is_bot"), False)))
        if people.num_rows:
            visits.add(visit_sums(people, new_visitor(people)))

    for batch in batches:
        if cut := whole.add(pa.Table.from_batches([batch])):
            add(*cut)
    if cut := whole.rest():
        add(*cut)
    counted, summed = daily.result(), visits.result()
    summed = summed.rename_columns([_VISIT_NAMES.get(name, name) for name in summed.column_names])
    yield from pa.concat_tables([_as_view_sums(counted), _as_view_sums(summed)]).combine_chunks().to_batches()


def _as_view_sums(table: pa.Table) -> pa.Table:
    """Rows of the view key and the columns this table has, the others null."""
    return pa.table(
        [
            table.column(name) if name in table.column_names else pa.nulls(table.num_rows, field.type)
            for name, field in zip(VIEW_SUMS_ARROW.names, VIEW_SUMS_ARROW)
        ],
        schema=VIEW_SUMS_ARROW,
    )
