"""Each engine's schema is derived from the one (name, type) list: Arrow, Spark, Flink SQL (the
speed layer's source, sink and UDF result) and DuckDB (the real-time store) agree with it."""

from __future__ import annotations

import duckdb
import pytest

from events import schema
from events.aggregate import AGG_SCHEMA
from events.enrich import ENRICHED_SCHEMA
from events.properties import LIVE_COLUMNS
from events.raw import RAW_SCHEMA

pytestmark = pytest.mark.fast


def test_sql_columns_quote_names_and_spell_types_per_dialect():
    cols = [("value", "string"), ("n", "long"), ("ok", "boolean"), ("b", "binary")]
    assert schema.sql_columns(cols, "flink") == "`value` STRING, `n` BIGINT, `ok` BOOLEAN, `b` BYTES"
    assert schema.sql_columns(cols, "duckdb", not_null=True) == (
        '"value" VARCHAR NOT NULL, "n" BIGINT NOT NULL, "ok" BOOLEAN NOT NULL, "b" BLOB NOT NULL'
    )
    assert schema.quote('we"ird', "duckdb") == '"we""ird"' and schema.quote("a`b", "flink") == "`a``b`"


def test_pick_keeps_the_order_asked_and_refuses_unknown_names():
    assert schema.pick(RAW_SCHEMA, ["site", "ts"]) == [("site", "string"), ("ts", "long")]
    with pytest.raises(KeyError):
        schema.pick(RAW_SCHEMA, ["no_such_field"])


def test_every_type_has_every_engines_form():
    for dialect, types in schema.SQL_TYPES.items():
        assert set(types) == set(schema.ARROW_TYPES), dialect


def test_spark_struct_matches_the_arrow_schema():
    from batch_layer.spark import struct_of

    struct = struct_of(ENRICHED_SCHEMA)
    assert [f.name for f in struct.fields] == [n for n, _ in ENRICHED_SCHEMA]
    assert struct.simpleString() == f"struct<{','.join(f'{n}:{t}' for n, t in _spark_names(ENRICHED_SCHEMA))}>"


def _spark_names(cols):
    spelled = {"string": "string", "long": "bigint", "boolean": "boolean", "date": "date", "binary": "binary"}
    spelled["map"] = "map<string,string>"
    return [(n, spelled[t]) for n, t in cols]


def test_flink_ddl_and_udf_types_follow_the_event_schemas():
    from core.settings import Settings
    from speed_layer import sql

    source = sql.source_ddl(Settings())
    for name in sql.SOURCE_FIELDS:
        assert f"`{name}` {schema.SQL_TYPES['flink'][dict(RAW_SCHEMA)[name]]}" in source
    sink = sql.sink_ddl(Settings())
    assert schema.sql_columns(AGG_SCHEMA, "flink") in sink
    assert sql.UDF_OUTPUT_SCHEMA == schema.pick(ENRICHED_SCHEMA, sql.UDF_OUTPUTS)


def test_flink_udf_result_type_is_the_enriched_schema():
    from events.rules import NO_RULES
    from speed_layer.udfs import ENRICH_FIELDS, enrich_udf

    enrich = enrich_udf(NO_RULES)

    assert [(n, t.__class__.__name__) for n, t in ENRICH_FIELDS] == [
        (n, {"string": "VarCharType", "boolean": "BooleanType", "long": "BigIntType"}[t])
        for n, t in schema.pick(
            ENRICHED_SCHEMA, ("dedupe_key", *dict.fromkeys(LIVE_COLUMNS.values()), "is_bot", "bad_reason")
        )
    ]
    assert [f.name for f in enrich._result_type.fields] == [n for n, _ in ENRICH_FIELDS]


def test_duckdb_store_table_is_the_agg_schema_by_minute():
    from serving.realtime.duckdb_store import DuckDBStore

    store = DuckDBStore()
    described = store.db.execute("DESCRIBE live_minute").fetchall()
    expected = [("minute", "long")] + [c for c in AGG_SCHEMA if c[0] not in ("window_start", "window_end")]
    assert [(row[0], row[1]) for row in described] == [(n, schema.SQL_TYPES["duckdb"][t]) for n, t in expected]
    conn = duckdb.connect()
    conn.execute(f"CREATE TABLE t ({schema.sql_columns(RAW_SCHEMA, 'duckdb')})")
    assert [r[0] for r in conn.execute("DESCRIBE t").fetchall()] == [n for n, _ in RAW_SCHEMA]
