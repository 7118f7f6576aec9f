"""Every schema of the platform is a list of (name, type) in events/ (RAW_SCHEMA, CLEAN_SCHEMA,
AGG_SCHEMA, the views'). Each engine's form is derived from that list here, so a column added
there reaches Arrow, Spark, Flink SQL and DuckDB without a hand copy to forget.

Types: "string", "long", "boolean", "date", "binary", "map" (string -> string).
"""

from __future__ import annotations

import pyarrow as pa

Schema = list[tuple[str, str]]

ARROW_TYPES = {
    "string": pa.string(),
    "long": pa.int64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "binary": pa.binary(),
    "map": pa.map_(pa.string(), pa.string()),
}
# Column types as each SQL dialect spells them.
SQL_TYPES = {
    "flink": {
        "string": "STRING",
        "long": "BIGINT",
        "boolean": "BOOLEAN",
        "date": "DATE",
        "binary": "BYTES",
        "map": "MAP<STRING, STRING>",
    },
    "duckdb": {
        "string": "VARCHAR",
        "long": "BIGINT",
        "boolean": "BOOLEAN",
        "date": "DATE",
        "binary": "BLOB",
        "map": "MAP(VARCHAR, VARCHAR)",
    },
    "spark": {
        "string": "STRING",
        "long": "BIGINT",
        "boolean": "BOOLEAN",
        "date": "DATE",
        "binary": "BINARY",
        "map": "MAP<STRING, STRING>",
    },
}
# Identifier quotes: names such as ``value`` are reserved words in Flink SQL.
_QUOTES = {"flink": "`", "duckdb": '"', "spark": "`"}


def arrow_schema(schema: Schema) -> pa.Schema:
    return pa.schema([(name, ARROW_TYPES[typ]) for name, typ in schema])


def pick(schema: Schema, names: list[str] | tuple[str, ...]) -> Schema:
    """The named columns of ``schema``, in the order named (KeyError for a name it lacks)."""
    types = dict(schema)
    return [(name, types[name]) for name in names]


def quote(name: str, dialect: str) -> str:
    q = _QUOTES[dialect]
    return q + name.replace(q, q + q) + q


def sql_columns(schema: Schema, dialect: str, not_null: bool = False) -> str:
    """Column definitions for a CREATE TABLE in ``dialect`` (flink, duckdb, spark)."""
    suffix = " NOT NULL" if not_null else ""
    return ", ".join(f"{quote(name, dialect)} {SQL_TYPES[dialect][typ]}{suffix}" for name, typ in schema)
