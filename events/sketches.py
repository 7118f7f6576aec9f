"""Unique-visitor sketches: Apache DataSketches HLL, binary-compatible with Druid's
DataSketches extension (HLLSketchBuild / HLLSketchMerge), serialized compact and base64'd.

Every layer builds and merges visitors the same way, so any time range (speed windows, batch
days, the seam between them) is answered by one union of sketches.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable

from datasketches import hll_sketch, hll_union, tgt_hll_type

LG_K = 12  # Druid's default: ~1.6% relative standard error, ~4 KB per full sketch
# One relative standard error of an HLL with lg_k=12; tests allow a few of these.
RELATIVE_ERROR = 1.04 / (1 << (LG_K // 2))


class VisitorSketch:
    """A visitors sketch being built: ids in, the compact serialized sketch out."""

    __slots__ = ("_sketch",)

    def __init__(self) -> None:
        self._sketch = hll_sketch(LG_K, tgt_hll_type.HLL_4)

    def update_all(self, ids: Iterable[str]) -> None:
        """Add these ids (each a visitor id, not empty)."""
        for value in ids:
            self._sketch.update(value)

    def serialize(self) -> bytes:
        return self._sketch.serialize_compact()


def sketch_of(ids: Iterable[str]) -> str:
    sketch = VisitorSketch()
    sketch.update_all(value for value in ids if value)
    return base64.b64encode(sketch.serialize()).decode("ascii")


def union_of(sketches: Iterable[str]) -> hll_sketch:
    union = hll_union(LG_K)
    for encoded in sketches:
        if encoded:
            union.update(hll_sketch.deserialize(base64.b64decode(encoded)))
    return union.get_result(tgt_hll_type.HLL_4)


def estimate(sketches: Iterable[str]) -> int:
    """Distinct count of the union of base64 sketches."""
    return round(union_of(sketches).get_estimate())


def merge(sketches: Iterable[str]) -> str:
    return _encode(union_of(sketches))


def estimate_and_merge(sketches: Iterable[str]) -> tuple[int, str]:
    """Distinct count and merged base64 sketch from one union (not two)."""
    union = union_of(sketches)
    return round(union.get_estimate()), _encode(union)


def _encode(sketch: hll_sketch) -> str:
    return base64.b64encode(sketch.serialize_compact()).decode("ascii")
