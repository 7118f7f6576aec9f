"""The speed layer's vectorized (pandas) UDFs: thin wrappers over the events library, so the
Flink job computes exactly what the batch job and the tests compute."""

from __future__ import annotations

import pandas as pd
from pyflink.table import DataTypes
from pyflink.table.udf import udf

from events.enrich import enrich_frame
from events.rules import NO_RULES, Rules
from events.sketches import sketch_of
from speed_layer.sql import UDF_INPUTS, UDF_OUTPUT_SCHEMA

FLINK_TYPES = {
    "string": DataTypes.STRING(),
    "long": DataTypes.BIGINT(),
    "boolean": DataTypes.BOOLEAN(),
    "date": DataTypes.DATE(),
    "binary": DataTypes.BYTES(),
}
ENRICH_FIELDS = [(name, FLINK_TYPES[typ]) for name, typ in UDF_OUTPUT_SCHEMA]


def enrich_columns(*columns: pd.Series, rules: Rules = NO_RULES) -> pd.DataFrame:
    frame = enrich_frame(pd.DataFrame(dict(zip(UDF_INPUTS, columns))), [name for name, _ in ENRICH_FIELDS], rules)
    return frame.reset_index(drop=True)


def enrich_udf(rules: Rules):
    """The enrichment UDF with the operator's rules bound into it: they are pickled with the
    function and reach every Python worker of the cluster as they were when the job was built."""

    def enrich(*columns: pd.Series) -> pd.DataFrame:
        return enrich_columns(*columns, rules=rules)

    return udf(enrich, result_type=DataTypes.ROW([DataTypes.FIELD(n, t) for n, t in ENRICH_FIELDS]), func_type="pandas")


def hll_sketches(visitors: pd.Series) -> pd.Series:
    """LISTAGG'd visitor ids (comma-separated hex, repeats allowed) -> base64 HLL sketch per group.

    (Pandas UDAFs aren't supported in Flink streaming window aggregation, so the window's
    distinct ids are aggregated in SQL and the sketch is built by this scalar UDF.)
    """
    return pd.Series([sketch_of((joined or "").split(",")) for joined in visitors])


hll_sketch = udf(hll_sketches, result_type=DataTypes.STRING(), func_type="pandas")
