"""The speed-layer job: Kafka pixel.raw -> enrichment -> windowed aggregates -> Kafka pixel.agg.

Runs on a local Flink mini-cluster by default (`pixel speed`), or on a Flink cluster:
`pixel speed --jobmanager HOST:PORT` (PIXEL_SPEED_JOBMANAGER) submits it to the cluster's REST
endpoint and follows it; `flink run -py speed_layer/job.py` works too (settings from PIXEL_*).
Restarts resume from the newest retained checkpoint, so a killed job neither loses nor
double-counts a window (the sink commits its Kafka transaction with each checkpoint).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from pathlib import Path

import httpx

from core.settings import Settings
from infra.engines import prepare_environment
from infra.flink import TERMINAL_STATES, kafka_connector_jars
from speed_layer import sql

log = logging.getLogger(__name__)

JOB_NAME = "pixel-speed-layer"


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The newest complete checkpoint (chk-N with its _metadata) of any earlier run."""
    done = [p.parent for p in checkpoint_dir.glob("*/chk-*/_metadata")]
    return max(done, key=lambda p: p.stat().st_mtime) if done else None


def plan_checkpoint_dir(settings: Settings) -> Path:
    """Checkpoints of this version of the job's SQL: a changed plan (an upgrade) can't restore
    another plan's operator state, so it starts fresh from the consumer group's committed offsets
    (losing at most the windows in flight, which the batch layer recounts) instead of failing."""
    # The queries only: moving the brokers (addresses in the DDL) must keep the state. A sink at
    # another parallelism than the job is a stage of its own, which changes the operators' ids.
    plan = sql.ENRICHED_VIEW + sql.aggregate_insert(settings)
    if settings.speed_sink_parallelism != settings.speed_parallelism:
        plan += f"\n-- sink parallelism {settings.speed_sink_parallelism}"
    return settings.checkpoint_dir / f"plan-{hashlib.sha256(plan.encode()).hexdigest()[:12]}"


def idle_timeout(settings: Settings) -> str:
    return f"{round(settings.speed_idle_timeout_seconds * 1000)} ms"


def build(settings: Settings, restore: bool = True):
    """A TableEnvironment with the job's tables and UDFs, and the INSERT statement to run."""
    prepare_environment()
    # The local mini-cluster's log (JobManager, TaskManager, Kafka connector) goes to the data
    # dir: by default it is a file inside the PyFlink install, overwritten by every PyFlink JVM
    # on the machine, which loses a stalled job's evidence at the next start.
    flink_log_dir = settings.run_dir / "flink-log"
    flink_log_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("FLINK_LOG_DIR", str(flink_log_dir))
    from pyflink.table import EnvironmentSettings, TableEnvironment

    from speed_layer.udfs import enrich_udf, hll_sketch

    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    conf = t_env.get_config()
    checkpoint_dir = plan_checkpoint_dir(settings)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    options = {
        "pipeline.name": JOB_NAME,
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
        # Chained operators hand records on without copying them: the copies were a quarter of
        # the job's JVM samples (JFR, bench/speed_layer.py's load). The SQL operators copy what
        # they buffer themselves; the exact-count tests run with it.
        "pipeline.object-reuse": "true",
    }
    checkpoint = latest_checkpoint(checkpoint_dir) if restore else None
    if checkpoint is not None:
        log.info("resuming from checkpoint %s", checkpoint)
        options["execution.state-recovery.path"] = str(checkpoint)
    if settings.speed_jobmanager:
        host, port = jobmanager_address(settings.speed_jobmanager)
        options |= {"execution.target": "remote", "rest.address": host, "rest.port": str(port)}
    for key, value in options.items():
        conf.set(key, value)
    t_env.create_temporary_function("enrich", enrich_udf(settings.rules))
    t_env.create_temporary_function("hll_sketch", hll_sketch)
    t_env.execute_sql(sql.source_ddl(settings))
    t_env.execute_sql(sql.sink_ddl(settings))
    t_env.execute_sql(sql.ENRICHED_VIEW)
    return t_env, sql.aggregate_insert(settings)


def jobmanager_address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"the JobManager's address is HOST:PORT (its REST endpoint), not {value!r}")
    return host, int(port)


def _rest(settings: Settings, path: str) -> dict:
    """GET a path of the JobManager's REST API, as JSON."""
    host, port = jobmanager_address(settings.speed_jobmanager)
    return httpx.get(f"http://{host}:{port}{path}", timeout=10).json()


def running_job(settings: Settings) -> str | None:
    """The id of this job already running on the cluster (a `pixel speed` that was restarted
    while its job ran on): followed, never submitted twice (which would count twice)."""
    try:
        jobs = _rest(settings, "/jobs/overview")["jobs"]
    except httpx.HTTPError as error:
        raise SystemExit(
            f"the Flink JobManager at {settings.speed_jobmanager} does not answer ({error}): start the cluster, "
            "or point PIXEL_SPEED_JOBMANAGER / --jobmanager at its REST endpoint (port 8081 by default)"
        ) from None
    alive = [j["jid"] for j in jobs if j["name"] == JOB_NAME and j["state"] not in TERMINAL_STATES]
    return alive[0] if alive else None


def follow(settings: Settings, job_id: str) -> str:
    """Wait for the cluster's job to end (restarts after a TaskManager's loss are the cluster's
    own); its final state."""
    state = ""
    while state not in TERMINAL_STATES:
        time.sleep(2)
        try:
            new = _rest(settings, f"/jobs/{job_id}")["state"]
        except httpx.HTTPError as error:
            log.warning("JobManager %s unreachable (%s); retrying", settings.speed_jobmanager, error)
            continue
        if new != state:
            log.info("job %s: %s", job_id, new)
        state = new
    return state


def run(settings: Settings) -> None:
    if settings.speed_jobmanager:
        job_id = running_job(settings)
        if job_id is not None:
            log.info("speed layer already running on %s as job %s: following it", settings.speed_jobmanager, job_id)
            _end(follow(settings, job_id))
            return
    t_env, insert = build(settings)
    result = t_env.execute_sql(insert)
    job_id = str(result.get_job_client().get_job_id())
    log.info(
        "speed layer running (job %s%s): %s -> %s, %ds windows, parallelism %d (%d writing)",
        job_id,
        f" on {settings.speed_jobmanager}" if settings.speed_jobmanager else "",
        settings.raw_topic,
        settings.agg_topic,
        settings.speed_window_seconds,
        settings.speed_parallelism,
        settings.speed_sink_parallelism,
    )
    if settings.speed_jobmanager:
        _end(follow(settings, job_id))  # stopping `pixel speed` leaves the job to its cluster
    else:
        result.wait()


def _end(state: str) -> None:
    if state != "FINISHED":
        raise SystemExit(f"the speed layer's job ended {state}: see the JobManager's log")


if __name__ == "__main__":  # flink run -py speed_layer/job.py
    logging.basicConfig(level=logging.INFO)
    run(Settings())
