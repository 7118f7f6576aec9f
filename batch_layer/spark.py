"""The SparkSession the batch job runs in, and our schemas as Spark types.

Local by default (``local[2]``); the same job runs on a cluster when ``PIXEL_SPARK_MASTER`` names
one (spark://, yarn, k8s://) or under spark-submit, which provides the master itself.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql.types import (
    BinaryType,
    BooleanType,
    DataType,
    DateType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
)

from core.settings import Settings
from infra.engines import prepare_environment

log = logging.getLogger(__name__)

LOG_CONFIG = Path(__file__).resolve().parent.parent / "infra" / "spark" / "log4j2.properties"
_TYPES: dict[str, DataType] = {
    "string": StringType(),
    "long": LongType(),
    "boolean": BooleanType(),
    "date": DateType(),
    "binary": BinaryType(),
    "map": MapType(StringType(), StringType()),
}


def struct_of(schema: list[tuple[str, str]]) -> StructType:
    """One of our (name, type) schemas (events/) as a Spark StructType."""
    return StructType([StructField(name, _TYPES[typ]) for name, typ in schema])


def spark_session(settings: Settings) -> SparkSession:
    """Get (or create) the session. Settings only apply when this process starts the JVM."""
    prepare_environment()
    if settings.spark_master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # no reverse-DNS surprises on loopback
    # Python workers must run this venv's interpreter (it has the events library and its deps).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.appName("pixel-batch")
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.sql.session.timeZone", "UTC")  # days are UTC days, everywhere
        .config("spark.sql.shuffle.partitions", str(settings.spark_shuffle_partitions))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # Size output files by bytes, not by core count: a quiet day is one Parquet file, not
        # spark_shuffle_partitions tiny ones (AQE merges shuffle partitions up to 64 MB), and
        # let it do so below the cached (persisted) stages too.
        .config("spark.sql.adaptive.coalescePartitions.parallelismFirst", "false")
        .config("spark.sql.optimizer.canChangeCachedPlanOutputPartitioning", "true")
        .config("spark.sql.parquet.compression.codec", "zstd")
        # HLL sketch aggregates are object-hash aggregates, which Spark turns sort-based past
        # 128 groups by default: a day's views have thousands, and the sort is ~30% of the view's time.
        # Sketches of small groups stay small (sparse), so the bound is on groups, not memory.
        .config("spark.sql.objectHashAggregate.sortBased.fallbackThreshold", "100000")
        .config("spark.ui.showConsoleProgress", "false")  # our own progress bar owns the terminal
        .config("spark.ui.enabled", "false")
        # Compiled query classes are cached by their code; a day's run has more than the default
        # 100, and a class compiled again is JIT-compiled again: with room for them, backfills and
        # a long-running `pixel up` reuse them (the JIT's time per 1M-event day: ~3 s, not ~15 s).
        .config("spark.sql.codegen.cache.maxEntries", "2000")
        # The throughput collector: a batch job wants the most work per CPU second, not short
        # pauses (G1's concurrent work costs ~20% of a big day).
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{LOG_CONFIG} -XX:+UseParallelGC")
    )
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        # Started by us, not by spark-submit (whose JVM already has its --master): ours decides.
        builder = builder.master(settings.spark_master)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
