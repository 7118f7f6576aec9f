"""A closed day's clean events -> the store's hits rows (serving.store.schema). Pure Arrow.

Visits are cut by the events library's rule (events.visits), as the batch job's sessions view
cuts them; each hit gets its visit's number, length, duration, entry and exit page, and the
visit's source, referrer and campaign (its entry hit's). Rows come out sorted by site and time,
so the store keeps each site's rows of a day together (one site's question reads its rows only).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from events.props import props_text
from events.schema import arrow_schema
from events.visits import new_visit, new_visitor
from serving.store.schema import CLEAN_INPUTS, ENTRY_COLUMNS, HITS_COLUMNS, HITS_SCHEMA, PROPERTIES

HITS_ARROW = arrow_schema(HITS_SCHEMA)
_DAY_SHIFT = 32  # numbers of visitors and visits: day ordinal << 32 | the day's index


def _props_texts(props: pa.ChunkedArray) -> pa.Array:
    """The clean events' property maps as the hits' JSON texts ("" for none). Most hits have
    none: only the others are converted."""
    maps = props.combine_chunks()
    texts = np.full(len(maps), "", dtype=object)
    if len(maps):
        lengths = np.diff(maps.offsets.to_numpy()) * maps.is_valid().to_numpy(zero_copy_only=False)
        some = np.flatnonzero(lengths > 0)
        texts[some] = [props_text(dict(pairs)) for pairs in maps.take(pa.array(some)).to_pylist()]
    return pa.array(texts, pa.string())


def hits_of_day(clean: pa.Table, day: dt.date) -> pa.Table:
    """Clean events of ``day`` (any order, at least CLEAN_INPUTS) -> hits rows (HITS_SCHEMA)."""
    clean = clean.select(CLEAN_INPUTS)
    if clean.num_rows == 0:
        return HITS_ARROW.empty_table()
    clean = clean.take(
        pc.sort_indices(
            clean, [("visitor_id", "ascending"), ("site", "ascending"), ("ts", "ascending")], null_placement="at_end"
        )
    )
    ts = clean.column("ts").to_numpy()
    starts = new_visit(new_visitor(clean), ts)
    visit_index = np.cumsum(starts) - 1
    entry = np.flatnonzero(starts)
    exit_ = np.append(entry[1:], len(ts)) - 1
    base = day.toordinal() << _DAY_SHIFT
    known = pc.and_(pc.is_valid(clean.column("visitor_id")), pc.not_equal(clean.column("visitor_id"), ""))
    visitor_codes = pc.dictionary_encode(clean.column("visitor_id")).combine_chunks().indices
    columns = {
        "day": pa.repeat(pa.scalar(day, pa.date32()), clean.num_rows),
        "site": clean.column("site"),
        "ts": clean.column("ts"),
        "visitor": pc.if_else(known, pc.add(visitor_codes.cast(pa.int64()), base), pa.scalar(None, pa.int64())),
        "visit": visit_index + base,
        "visit_hits": (exit_ - entry + 1)[visit_index],
        "visit_duration_ms": (ts[exit_] - ts[entry])[visit_index],
    }
    for name, prop in PROPERTIES.items():
        values = clean.column(prop.source)
        if name == "visit:entry_page":
            values = values.take(entry[visit_index])
        elif name == "visit:exit_page":
            values = values.take(exit_[visit_index])
        elif prop.column in ENTRY_COLUMNS:
            values = values.take(entry[visit_index])
        columns[prop.column] = pc.fill_null(values, "")
    columns["props"] = _props_texts(clean.column("props"))
    hits = pa.table({name: columns[name] for name in HITS_COLUMNS}).cast(HITS_ARROW)
    return hits.take(pc.sort_indices(hits, [("site", "ascending"), ("ts", "ascending")]))
