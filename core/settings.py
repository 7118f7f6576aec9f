"""One settings object for every service. Each field can be set as PIXEL_<FIELD> in the env."""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from events.rules import Rules, check_patterns


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PIXEL_", env_file=None, extra="ignore")

    # --- where things live -------------------------------------------------------------------
    data_dir: Path = Field(Path("data"), description="Root of local state: raw data, spool, salts.")
    geo_dir: str = Field(
        "",
        description="Folder of the IP location database (DB-IP City Lite, MMDB). Empty = .engines/geo in "
        "the checkout, where `make setup` fetches it. The enrichment reads PIXEL_GEO_DIR in every process.",
    )
    bot_user_agents: list[str] = Field(
        default_factory=list,
        description="Your own bot rules: user agents matching one of these case-insensitive regular "
        'expressions count as bots, e.g. \'["acme-uptime/", "^internal-crawler"]\'. New events follow after '
        "`pixel speed` restarts; closed days when re-run with `pixel reprocess`.",
    )
    storage_url: str = Field(
        "",
        description="Root of the raw/clean datasets: file:///abs/path or hdfs://namenode:9870/path "
        "(WebHDFS). Empty = file://<data_dir>.",
    )
    hdfs_user: str = Field("pixel", description="User for WebHDFS requests (hdfs:// storage only).")

    # --- broker ------------------------------------------------------------------------------
    kafka_bootstrap: str = Field("", description="Kafka bootstrap servers. Empty = the embedded broker's host:port.")
    broker_host: str = Field("127.0.0.1", description="Address the embedded broker listens on.")
    broker_port: int = Field(9092, description="Port the embedded broker listens on.")
    raw_topic: str = Field("pixel.raw", description="Topic of raw events (collector -> lander, speed layer).")
    bad_topic: str = Field("pixel.bad", description="Topic of bad rows (collector, lander -> lander).")
    agg_topic: str = Field("pixel.agg", description="Topic of the speed layer's windowed aggregates.")
    raw_partitions: int = Field(6, description="Partitions of pixel.raw (keyed by site).")

    # --- collector ---------------------------------------------------------------------------
    collector_host: str = Field("127.0.0.1", description="Address the collector listens on.")
    collector_port: int = Field(8080, description="Port the collector listens on.")
    collector_workers: int = Field(1, ge=1, description="Collector worker processes.")
    collector_server: Literal["granian", "granian-asgi", "uvicorn"] = Field(
        "granian",
        description="The collector's HTTP server: granian in RSGI (the fastest), granian in ASGI, or uvicorn "
        "(ASGI). Only the ASGI servers keep header values that aren't ASCII.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Peers (IPs or CIDRs) whose X-Forwarded-For is believed, e.g. your load balancer.",
    )
    max_query_bytes: int = Field(8192, description="Longer pixel queries become bad rows.")
    max_body_bytes: int = Field(16384, description="Longer /collect bodies become bad rows.")
    producer_linger_ms: int = Field(10, description="How long the collector's producer waits to fill a batch.")
    producer_queue_max_messages: int = Field(
        200_000, description="librdkafka's local queue; when full, hits go to the disk spool."
    )
    collector_tick_seconds: float = Field(
        1.0,
        ge=0,
        description="Send an event-time tick to every pixel.raw partition this often, so "
        "partitions without traffic don't hold the speed layer's windows back (0: off).",
    )
    spool_fsync_interval_ms: int = Field(200, description="Spool appends are fsynced this often.")
    retain_until_landed: bool = Field(
        True,
        description="Keep each delivered event in memory until the lander has committed past it, "
        "and resend if the broker lost its log. Needed with the in-memory embedded broker; may be "
        "turned off with a replicated Kafka cluster.",
    )
    retain_max_events: int = Field(
        500_000, description="Cap on events kept awaiting landing (oldest are released first)."
    )

    # --- lander ------------------------------------------------------------------------------
    lander_group: str = Field("pixel-lander", description="Consumer group of the landers.")
    lander_flush_events: int = Field(20_000, description="Flush a partition's batch at this size.")
    lander_flush_seconds: float = Field(2.0, description="... or when its oldest event is this old.")
    lander_metrics_port: int = Field(
        0, ge=0, description="Serve the lander's Prometheus metrics on this port (0: off)."
    )

    # --- speed layer (PyFlink) -----------------------------------------------------------------
    # Freshness (hit -> counted by the API) is about window + watermark + checkpoint: 1 s each
    # keeps it under 5 s at p95 (docs/benchmarks.md has the throughput this costs).
    speed_window_seconds: int = Field(1, ge=1, description="Tumbling window length.")
    speed_watermark_seconds: int = Field(
        1, ge=0, description="Bounded out-of-orderness allowed (later events wait for the nightly job)."
    )
    speed_checkpoint_seconds: int = Field(
        1, ge=1, description="Checkpoint (and exactly-once commit) interval: speed rows become visible at each."
    )
    speed_idle_timeout_seconds: float = Field(
        0,
        ge=0,
        description="Treat a pixel.raw partition silent this long as idle (0: never). Off by "
        "default: the collectors' ticks keep every partition moving, and under a backlog Flink marked "
        "busy partitions idle and dropped their events as late (docs/benchmarks.md).",
    )
    speed_parallelism: int = Field(
        1,
        ge=1,
        description="Flink parallelism of the speed layer's job (<= pixel.raw's partitions; on a cluster, <= its "
        "free slots).",
    )
    speed_sink_parallelism: int = Field(
        1,
        ge=1,
        description="Transactional writers of the speed layer's job to pixel.agg. Keep 1 on the embedded "
        "broker: tansu 0.6 leaves a transaction open for ever now and then when two writers commit to the "
        "same partitions, which hides every later row from the stores (bench/tansu_transactions.py). On a "
        "Kafka cluster, raise it with the job's parallelism.",
    )
    speed_group: str = Field(
        "pixel-speed", description="Consumer group and transactional id prefix of the speed layer."
    )
    flink_heap: str = Field("768m", description="Heap of the local Flink mini-cluster's JVM.")
    speed_jobmanager: str = Field(
        "",
        description="HOST:PORT of a Flink cluster's REST endpoint to run the speed layer on (its Python must "
        "have this package installed; checkpoints go to PIXEL_CHECKPOINT_DIR, shared by its TaskManagers). "
        "Empty = a local mini-cluster inside `pixel speed`.",
    )

    # --- batch layer (PySpark) -----------------------------------------------------------------
    spark_master: str = Field("local[2]", description="Spark master: local[N], spark://host:7077, yarn, k8s://...")
    spark_driver_memory: str = Field("2g", description="Driver memory (in local mode: all of Spark's memory).")
    spark_shuffle_partitions: int = Field(8, ge=1, description="spark.sql.shuffle.partitions (AQE coalesces).")
    spark_storage_url: str = Field(
        "",
        description="The storage root as Spark's Hadoop client should address it. Empty = derived: "
        "file:// as is, hdfs://namenode:9870/path (WebHDFS) as webhdfs://namenode:9870/path.",
    )
    batch_lateness_hours: int = Field(
        2,
        ge=0,
        le=24,
        description="Events of day D are also looked for in the folders of the first N hours of D+1 "
        "(landed late) and, for deduplication, the last N hours of D-1.",
    )
    batch_schedule_utc: str = Field(
        "02:30",
        pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
        description="When `pixel up` runs the nightly job for the previous day (HH:MM, UTC). "
        "Keep it after midnight + batch_lateness_hours, or late events miss the run.",
    )
    raw_retention_days: int = Field(
        0,
        ge=0,
        description="The nightly run removes raw and bad raw days older than this, once closed; clean events and "
        "views are kept (0: keep raw data for ever).",
    )
    batch_catchup_days: int = Field(
        7, ge=0, description="On start, the nightly scheduler also closes up to this many missed days."
    )

    # --- serving -----------------------------------------------------------------------------
    realtime_store: Literal["embedded", "druid"] = Field(
        "embedded",
        description="Where both views are served from: the embedded DuckDB stores, or Druid (the speed rows "
        "by its Kafka supervisor, each closed day's batch rows by an ingestion task).",
    )
    druid_host: str = Field("localhost", description="Druid broker/router host (realtime_store=druid).")
    druid_port: int = Field(8082, description="Druid broker/router port (realtime_store=druid).")
    druid_overlord_url: str = Field(
        "http://localhost:8081",
        description="The Druid Overlord (or router) that takes each closed day's batch ingestion task "
        "(realtime_store=druid).",
    )
    druid_input_root: str = Field(
        "",
        description="The lake's root as Druid's HDFS input source reads it. Empty = the storage URL with the "
        "NameNode's RPC port: hdfs://namenode:9870/pixel -> hdfs://namenode:8020/pixel.",
    )
    serving_host: str = Field("127.0.0.1", description="Address the Stats API and dashboard listen on.")
    serving_port: int = Field(8000, description="Port the Stats API and dashboard listen on.")
    collector_public_url: str = Field(
        "",
        description="The collector's URL as browsers reach it, for the embed snippet. "
        "Empty = http://<collector_host>:<collector_port>.",
    )
    store_sync_seconds: float = Field(
        5.0, gt=0, description="How often serving looks for closed (or re-run) days to load into the analytics store."
    )
    store_memory_limit: str = Field("512MB", description="Memory the embedded analytics store (DuckDB) may use.")
    query_timeout_seconds: float = Field(
        5.0, gt=0, description="A Stats API query running longer is stopped and answered with a 503."
    )
    api_rate_per_hour: float = Field(
        600,
        gt=0,
        description="Stats API requests an hour per API token, or per client address without one (429 past it).",
    )
    api_rate_burst: int = Field(100, ge=1, description="... of which this many may come at once.")
    dashboard_rate_per_hour: float = Field(
        36_000,
        gt=0,
        description="The dashboard's own Stats API requests an hour, per token or address (a view asks ~12).",
    )
    dashboard_rate_burst: int = Field(300, ge=1, description="... of which this many may come at once.")
    registry_url: str = Field(
        "",
        description="Sites and tokens database (SQLAlchemy URL), e.g. "
        "postgresql+psycopg://pixel@db/pixel. Empty = SQLite in the data dir.",
    )

    # --- derived -----------------------------------------------------------------------------
    @field_validator("bot_user_agents")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        return check_patterns(patterns)

    @property
    def rules(self) -> Rules:
        """The operator's enrichment rules, as the events library takes them."""
        return Rules(bot_user_agents=tuple(self.bot_user_agents))

    @model_validator(mode="after")
    def _parallelism_within_partitions(self) -> Settings:
        # A source subtask without a partition never advances its watermark (idle detection
        # is off): every window would wait for it for ever.
        if self.speed_parallelism > self.raw_partitions:
            raise ValueError(
                f"PIXEL_SPEED_PARALLELISM ({self.speed_parallelism}) is above pixel.raw's partitions "
                f"(PIXEL_RAW_PARTITIONS, {self.raw_partitions}): lower it, or add partitions first"
            )
        return self

    @model_validator(mode="after")
    def _default_bootstrap(self) -> Settings:
        if not self.kafka_bootstrap:
            self.kafka_bootstrap = f"{self.broker_host}:{self.broker_port}"
        return self

    @cached_property
    def storage_root(self) -> str:
        return self.storage_url or f"file://{self.data_dir.resolve()}"

    @property
    def spark_root(self) -> str:
        """The storage root for Spark: WebHDFS URLs become Hadoop's webhdfs:// scheme."""
        if self.spark_storage_url:
            return self.spark_storage_url.rstrip("/")
        if self.storage_root.startswith("hdfs://"):
            return "webhdfs://" + self.storage_root.removeprefix("hdfs://").rstrip("/")
        return self.storage_root.rstrip("/")

    @property
    def collector_url(self) -> str:
        return (self.collector_public_url or f"http://{self.collector_host}:{self.collector_port}").rstrip("/")

    @property
    def registry_database_url(self) -> str:
        return self.registry_url or f"sqlite:///{(self.data_dir / 'registry.db').resolve()}"

    @property
    def store_db(self) -> Path:
        """The embedded analytics store (DuckDB file): the closed days' hits."""
        return self.data_dir / "store" / "hits.duckdb"

    @property
    def realtime_db(self) -> Path:
        """The embedded real-time store (DuckDB file)."""
        return self.data_dir / "realtime" / "agg.duckdb"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def checkpoint_dir(self) -> Path:
        return self.data_dir / "flink" / "checkpoints"


def settings_env(settings: Settings) -> dict[str, str]:
    """This environment plus the PIXEL_* variables that give a child process exactly ``settings``."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        env[f"PIXEL_{name.upper()}"] = json.dumps(value) if isinstance(value, list) else str(value)
    return env


def settings_table(settings: Settings | None = None) -> list[tuple[str, str, str]]:
    """(environment variable, value, meaning) of every setting: the defaults, or ``settings``'."""
    values = (settings or Settings()).model_dump()
    return [
        (
            f"PIXEL_{name.upper()}",
            json.dumps(values[name]) if isinstance(values[name], list) else str(values[name]),
            field.description or "",
        )
        for name, field in Settings.model_fields.items()
    ]
