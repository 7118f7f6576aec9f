"""The speed-layer job: Kafka pixel.raw -> enrichment -> windowed aggregates -> Kafka pixel.agg.

Runs on a local Flink mini-cluster by default (`pixel speed`); the same module is submittable
to a Flink cluster (`flink run -py speed_layer/job.py`, settings from PIXEL_* env vars).
Restarts resume from the newest retained checkpoint, so a killed job neither loses nor
double-counts a window (the sink commits its Kafka transaction with each checkpoint).
"""

from __future__ import annotations

import hashlib
import logging
import sys
from pathlib import Path

from core.settings import Settings
from infra.engines import prepare_environment
from infra.flink import kafka_connector_jars
from speed_layer import sql

log = logging.getLogger(__name__)


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The newest complete checkpoint (chk-N with its _metadata) of any earlier run."""
    done = [p.parent for p in checkpoint_dir.glob("*/chk-*/_metadata")]
    return max(done, key=lambda p: p.stat().st_mtime) if done else None


def plan_checkpoint_dir(settings: Settings) -> Path:
    """Checkpoints of this version of the job's SQL: a changed plan (an upgrade) can't restore
    another plan's operator state, so it starts fresh from the consumer group's committed offsets
    (losing at most the windows in flight, which the batch layer recounts) instead of failing."""
    # The queries only: moving the brokers (addresses in the DDL) must keep the state.
    plan = sql.ENRICHED_VIEW + sql.aggregate_insert(settings)
    return settings.checkpoint_dir / f"plan-{hashlib.sha256(plan.encode()).hexdigest()[:12]}"


def idle_timeout(settings: Settings) -> str:
    return f"{round(settings.speed_idle_timeout_seconds * 1000)} ms"


def build(settings: Settings, restore: bool = True):
    """A TableEnvironment with the job's tables and UDFs, and the INSERT statement to run."""
    prepare_environment()
    from pyflink.table import EnvironmentSettings, TableEnvironment

    from speed_layer.udfs import enrich_udf, hll_sketch

    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    conf = t_env.get_config()
    checkpoint_dir = plan_checkpoint_dir(settings)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    options = {
        "pipeline.name": "pixel-speed-layer",
        "pipeline.jars": ";".join(jar.resolve().as_uri() for jar in kafka_connector_jars()),
        "parallelism.default": str(settings.speed_parallelism),
        "table.local-time-zone": "UTC",
        # Partitions without traffic advance by the collectors' ticks, not by an idle timeout
        # (which dropped events as late under a backlog); 0 ms = never idle.
        "table.exec.source.idle-timeout": idle_timeout(settings),
        "execution.checkpointing.interval": f"{settings.speed_checkpoint_seconds} s",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.dir": checkpoint_dir.resolve().as_uri(),
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.num-retained": "3",
        # A bundle goes to the Python UDFs after 200 ms (freshness at low rates) or 20k rows
        # (throughput under load: larger Arrow batches amortize the JVM<->Python crossing).
        "python.fn-execution.bundle.time": "200",
        "python.fn-execution.bundle.size": "20000",
        "python.fn-execution.arrow.batch.size": "20000",
        "python.executable": sys.executable,
    }
    checkpoint = latest_checkpoint(checkpoint_dir) if restore else None
    if checkpoint is not None:
        log.info("resuming from checkpoint %s", checkpoint)
        options["execution.state-recovery.path"] = str(checkpoint)
    for key, value in options.items():
        conf.set(key, value)
    t_env.create_temporary_function("enrich", enrich_udf(settings.rules))
    t_env.create_temporary_function("hll_sketch", hll_sketch)
    t_env.execute_sql(sql.source_ddl(settings))
    t_env.execute_sql(sql.sink_ddl(settings))
    t_env.execute_sql(sql.ENRICHED_VIEW)
    return t_env, sql.aggregate_insert(settings)


def run(settings: Settings) -> None:
    t_env, insert = build(settings)
    result = t_env.execute_sql(insert)
    log.info(
        "speed layer running (job %s): %s -> %s, %ds windows",
        result.get_job_client().get_job_id(),
        settings.raw_topic,
        settings.agg_topic,
        settings.speed_window_seconds,
    )
    result.wait()


if __name__ == "__main__":  # flink run -py speed_layer/job.py
    logging.basicConfig(level=logging.INFO)
    run(Settings())
