"""The speed layer's Flink SQL, built from settings by pure functions (unit-tested as text).

Pipeline: Kafka pixel.raw (JSON, event time = collector ts, bounded out-of-orderness) ->
enrich (vectorized UDF: the events library) -> valid events only -> tumbling windows with
window deduplication by dedupe_key (duplicates within a window vanish) -> one aggregation per
window, site and combination of property values (events, pageviews, the visitor ids; bots one
row per window and site) -> visitors = HLL sketch of each row's visitor ids -> Kafka pixel.agg,
exactly-once (Kafka transactions committed on checkpoints).

The rows are at the finest grain (events.aggregate), so the stores answer any filter and any
breakdown of the open days with a WHERE and a GROUP BY.
"""

from __future__ import annotations

from core.settings import Settings
from events.aggregate import AGG_SCHEMA
from events.enrich import ENRICHED_SCHEMA
from events.properties import LIVE_COLUMNS
from events.raw import RAW_SCHEMA
from events.schema import pick, sql_columns

# The raw fields the job reads; those its enrichment UDF takes; the enrichment outputs it keeps.
SOURCE_FIELDS = ("event_id", "ts", "site", "event", "url", "referrer", "ua", "ip_trunc", "visitor_id", "eid")
UDF_INPUTS = ("event_id", "ts", "site", "event", "url", "referrer", "ua", "ip_trunc", "eid")
UDF_OUTPUTS = ("dedupe_key", *dict.fromkeys(LIVE_COLUMNS.values()), "is_bot", "bad_reason")
SOURCE_SCHEMA = pick(RAW_SCHEMA, SOURCE_FIELDS)
UDF_OUTPUT_SCHEMA = pick(ENRICHED_SCHEMA, UDF_OUTPUTS)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def source_ddl(s: Settings) -> str:
    return f"""
CREATE TABLE raw_events (
  {sql_columns(SOURCE_SCHEMA, "flink")},
  -- A missing ts becomes epoch 0: far too late for any window, instead of a null rowtime.
  rowtime AS TO_TIMESTAMP_LTZ(COALESCE(ts, 0), 3),
  WATERMARK FOR rowtime AS rowtime - INTERVAL '{s.speed_watermark_seconds}' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = {_quote(s.raw_topic)},
  'properties.bootstrap.servers' = {_quote(s.kafka_bootstrap)},
  'properties.group.id' = {_quote(s.speed_group)},
  'scan.startup.mode' = 'group-offsets',
  'properties.auto.offset.reset' = 'earliest',
  'format' = 'json',
  -- Malformed messages are the lander's to report (bad rows); the speed view skips them.
  'json.ignore-parse-errors' = 'true'
)"""


def sink_ddl(s: Settings) -> str:
    return f"""
CREATE TABLE agg (
  {sql_columns(AGG_SCHEMA, "flink")}
) WITH (
  'connector' = 'kafka',
  'topic' = {_quote(s.agg_topic)},
  'properties.bootstrap.servers' = {_quote(s.kafka_bootstrap)},
  'key.format' = 'raw',
  'key.fields' = 'site',
  'value.format' = 'json',
  'value.fields-include' = 'ALL',
  'sink.delivery-guarantee' = 'exactly-once',
  -- One writer by default whatever the job's parallelism: concurrent transactional writers
  -- lose commits on the embedded broker (PIXEL_SPEED_SINK_PARALLELISM).
  'sink.parallelism' = '{s.speed_sink_parallelism}',
  'sink.transactional-id-prefix' = {_quote(s.speed_group)},
  -- Must not exceed the brokers' transaction.max.timeout.ms (15 min by default).
  'properties.transaction.timeout.ms' = '300000',
  -- A window's rows (up to one per event) leave in large compressed batches, not one by one:
  -- they are committed together at the next checkpoint anyway.
  'properties.linger.ms' = '50',
  'properties.batch.size' = '1048576',
  'properties.compression.type' = 'lz4'
)"""


# Per valid event: its keys and its speed-row columns (named as in events.aggregate); a bot's
# properties empty, so all of a window's bots fall in one row per site.
_PROPERTY_COLUMNS = ", ".join(
    f"CASE WHEN e.is_bot THEN '' ELSE e.{source} END AS `{column}`" for column, source in LIVE_COLUMNS.items()
)
ENRICHED_VIEW = f"""
CREATE TEMPORARY VIEW enriched AS
SELECT site, visitor_id, rowtime, e.dedupe_key AS dedupe_key, e.is_bot AS is_bot, {_PROPERTY_COLUMNS}
FROM (SELECT *, enrich({", ".join(UDF_INPUTS)}) AS e FROM raw_events)
WHERE e.bad_reason IS NULL"""


def aggregate_insert(s: Settings) -> str:
    columns = ", ".join(f"`{c}`" for c in LIVE_COLUMNS)
    ms = "UNIX_TIMESTAMP(DATE_FORMAT({}, 'yyyy-MM-dd HH:mm:ss')) * 1000"
    window = f"INTERVAL '{s.speed_window_seconds}' SECOND"
    return f"""
INSERT INTO agg
SELECT {ms.format("window_start")}, {ms.format("window_end")}, site, is_bot, {columns},
       -- No DISTINCT: the HLL sketch ignores repeats itself, and a distinct aggregate costs a
       -- state entry per visitor.
       SUM(CASE WHEN `event` = 'pageview' THEN 1 ELSE 0 END), COUNT(*), hll_sketch(LISTAGG(visitor_id))
FROM (
  -- Window deduplication: the first event of each dedupe key in its window, once, so the
  -- aggregation counts with COUNT(*) instead of keeping distinct-value state.
  SELECT * FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end, dedupe_key
                                 ORDER BY rowtime ASC) AS rn
    FROM TABLE(TUMBLE(TABLE enriched, DESCRIPTOR(rowtime), {window}))
  ) WHERE rn = 1
)
GROUP BY window_start, window_end, site, is_bot, {columns}"""
