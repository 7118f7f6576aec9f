"""EmulatedDruid: an EMULATION of the Druid datasource and its SQL, on DuckDB (no Druid can run on
these machines).

It ingests Parquet files as the batch ingestion task says (serving.druid.batch_ingest.day_task:
its dimensions, the is_bot transform, the minute query granularity, the count and filtered-count
metrics), and runs our Druid SQL after mapping each Druid function to DuckDB's equivalent. So a
test can check the answers of the SQL we send Druid against an independent reference.

Exercised: our SQL's logic (per-visit grouping, filters, metrics, order, paging, counting the
groups), the rows' grain as the task spec defines it, the Parquet the serving process writes.
Not exercised: Druid's SQL planner and its functions' own semantics (each is mapped below),
HLL estimates (APPROX_COUNT_DISTINCT_DS_HLL becomes an exact count), segments, HDFS.
"""

from __future__ import annotations

import re

import duckdb

from serving.analytics.sql import json_path

# Druid SQL -> DuckDB SQL, for the functions serving.druid.sql uses.
_GRAINS = {"PT1H": "hour", "P1D": "day", "P1W": "week", "P1M": "month"}
_REWRITES = [
    (r"APPROX_COUNT_DISTINCT_DS_HLL\(", "count(DISTINCT "),
    (r"MILLIS_TO_TIMESTAMP\(", "epoch_ms("),
    (r"CONTAINS_STRING\(", "contains("),
    (r"REGEXP_LIKE\(", "regexp_matches("),
    (r'JSON_VALUE\(TRY_PARSE_JSON\("props"\)', "json_extract_string(nullif(\"props\", '')"),
    (r"UNNEST\(JSON_KEYS\(TRY_PARSE_JSON\(\"props\"\), '\$'\)\)", "unnest(json_keys(nullif(\"props\", '')))"),
    (r"%\((\w+)\)s", r"$\1"),
]
_TIME = re.compile(r"TIME_FORMAT\(TIME_FLOOR\(__time, '(\w+)'\), '([^']+)'\)")
_JAVA_TO_STRFTIME = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H"}


def duckdb_sql(druid_sql: str) -> str:
    def time_format(match: re.Match) -> str:
        fmt = match.group(2)
        for java, c in _JAVA_TO_STRFTIME.items():
            fmt = fmt.replace(java, c)
        return f"strftime(date_trunc('{_GRAINS[match.group(1)]}', __time), '{fmt}')"

    sql = _TIME.sub(time_format, druid_sql)
    for pattern, replacement in _REWRITES:
        sql = re.sub(pattern, replacement, sql)
    return sql


def _duckdb_path(value):
    """Druid's JSONPath $['key'] as DuckDB's $."key" (the emulation's one parameter rewrite)."""
    if isinstance(value, str) and value.startswith("$['") and value.endswith("']"):
        return json_path(re.sub(r"\\(.)", r"\1", value[3:-2]))  # Druid's escapes undone
    return value


class EmulatedDruid:
    """A DuckDB table named like the datasource, filled as the ingestion task says; ``run`` has
    serving.realtime.druid_store.DruidStore.run's contract."""

    def __init__(self):
        self.db = duckdb.connect(":memory:")
        self.statements: list[tuple[str, dict]] = []

    def ingest(self, task: dict, parquet_files: list[str]) -> None:
        schema = task["spec"]["dataSchema"]
        assert schema["timestampSpec"]["format"] == "millis"
        assert schema["granularitySpec"]["queryGranularity"] == "MINUTE" and schema["granularitySpec"]["rollup"]
        made = {t["name"]: t["expression"] for t in schema["transformSpec"]["transforms"]}
        dims = [d if isinstance(d, str) else d["name"] for d in schema["dimensionsSpec"]["dimensions"]]
        select = [f"epoch_ms({schema['timestampSpec']['column']} // 60000 * 60000) AS __time"]
        select += [f'{made[d]} AS "{d}"' if d in made else f'"{d}"' for d in dims]
        for metric in schema["metricsSpec"]:
            if metric["type"] == "count":
                select.append(f'count(*) AS "{metric["name"]}"')
            elif metric["type"] == "filtered":
                condition = metric["filter"]
                assert condition["type"] == "selector"
                select.append(
                    f"count(*) FILTER (WHERE \"{condition['dimension']}\" = '{condition['value']}') "
                    f'AS "{metric["name"]}"'
                )
            # HLLSketchBuild: the emulation counts visitors exactly from the visitor dimension.
        source = f"read_parquet({parquet_files!r})"
        table = schema["dataSource"]
        exists = self.db.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
        ).fetchone()[0]
        verb = f'INSERT INTO "{table}"' if exists else f'CREATE TABLE "{table}" AS'
        self.db.execute(f"{verb} SELECT {', '.join(select)} FROM {source} GROUP BY ALL")

    def run(self, sql: str, params: dict) -> list[tuple]:
        self.statements.append((sql, params))
        used = set(re.findall(r"%\((\w+)\)s", sql))
        values = {k: _duckdb_path(v) for k, v in params.items() if k in used}
        return self.db.execute(duckdb_sql(sql), values).fetchall()
