"""The speed layer on a real standalone Flink cluster (one JobManager, two TaskManagers of two
slots, from the PyFlink wheel's own bin/), submitted by `pixel speed --jobmanager`, at
parallelism 2, against a real tansu broker: a backlog over every partition is counted exactly;
a TaskManager SIGKILLed mid-stream, the job restarts from its checkpoint on the slots left and
nothing is lost or counted twice."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest
from confluent_kafka import Producer

from infra.flink_cluster import FlinkCluster
from tests.harness import Service, wait_until
from tests.speed_layer.test_job import T0, WINDOW, assert_each_window_once, event, phased_producer, read_agg

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    flink = FlinkCluster(tmp_path_factory.mktemp("flink"), heartbeat_seconds=4).start()
    yield flink
    flink.stop()


@pytest.fixture
def on_cluster(settings, cluster):
    """The test's settings, pointed at the cluster at parallelism 2; its jobs cancelled after."""
    settings.speed_jobmanager = cluster.address
    settings.speed_parallelism = 2
    settings.raw_partitions = 6  # 3 per source subtask
    yield settings
    cluster.cancel_jobs()
    wait_until(lambda: cluster.overview()["jobs-running"] == 0, 60, message="jobs cancelled")


def running_on_cluster(cluster, speed: Service) -> str:
    def running():
        jobs = [j for j in cluster.jobs() if j["state"] == "RUNNING"]
        return jobs[0]["jid"] if jobs else None

    return wait_until(running, 120, interval=1, message=lambda: f"the job running; log: {speed.log()[-2000:]}")


def test_a_backlog_on_every_partition_is_counted_exactly_at_parallelism_2(on_cluster, broker, cluster, tmp_path):
    settings = on_cluster
    produce = phased_producer(settings)
    settings.speed_window_seconds = 10
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 20, "queue.buffering.max.messages": 200_000}
    )
    sites = [f"s{i}.example" for i in range(16)]
    n = 60_000
    for i in range(n):  # 20 s of event time over every partition (each site its own key)
        site = sites[i % len(sites)]
        producer.produce(settings.raw_topic, orjson.dumps(event(i, T0 + i // 3, site)), site.encode())
        if i % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0
    speed = Service("speed", settings, tmp_path).start()
    (tmp_path / "again").mkdir()
    again = Service("speed", settings, tmp_path / "again")
    try:
        job = running_on_cluster(cluster, speed)
        # A second `pixel speed` (a restarted one) follows the running job, never submits another.
        again.start()
        wait_until(lambda: "following it" in again.log(), 60, message=lambda: f"following; log: {again.log()}")
        assert job in again.log() and [j["jid"] for j in cluster.jobs() if j["state"] == "RUNNING"] == [job]
        produce([event(n, T0 + 40_000, "end.example")], pause=0)  # closes both 10 s windows
        windows = {T0, T0 + 10_000}

        def both_windows():
            rows = [r for r in read_agg(settings) if r["window_start"] in windows and r["site"] in sites]
            return rows if len({(r["window_start"], r["site"]) for r in rows}) == 2 * len(sites) else None

        wait_until(both_windows, 240, interval=2, message=lambda: f"both windows; log: {speed.log()[-1500:]}")
        time.sleep(2)  # the windows' last rows commit together; read them all
        rows = [r for r in read_agg(settings) if r["window_start"] in windows and r["site"] in sites]
    finally:
        again.kill()
        speed.kill()
    assert sum(r["events"] for r in rows) == n
    per_site = {}
    for r in rows:
        per_site[(r["window_start"], r["site"])] = per_site.get((r["window_start"], r["site"]), 0) + r["events"]
    assert per_site == {(w, s): n // 2 // len(sites) for w in windows for s in sites}


def test_a_killed_taskmanager_restarts_the_job_from_its_checkpoint(on_cluster, broker, cluster, tmp_path):
    settings = on_cluster
    produce = phased_producer(settings)
    sites = [f"k{i}.example" for i in range(8)]

    def rows_for(window):
        return [r for r in read_agg(settings) if r["window_start"] == window and r["site"] in sites]

    w0 = [event(i, T0 + i * 20, sites[i % len(sites)]) for i in range(80)]
    w1_before = [event(100 + i, T0 + WINDOW + i * 50, sites[i % len(sites)]) for i in range(30)]
    w1_after = [event(200 + i, T0 + WINDOW + 1500 + i * 10, sites[i % len(sites)]) for i in range(40)]
    speed = Service("speed", settings, tmp_path).start()
    try:
        job = running_on_cluster(cluster, speed)
        produce(w0)
        produce(w1_before)  # W0 closes and is emitted; W1 is half full in the windows' state
        wait_until(lambda: rows_for(T0), 120, interval=1, message=lambda: f"W0 emitted; log: {speed.log()[-1500:]}")
        time.sleep(3)  # checkpoints hold W1's partial state and the source offsets
        assert cluster.free_slots() == [1, 1]  # the job's two slots: one on each TaskManager
        cluster.kill_taskmanager(0)  # SIGKILL: its JVM and Python workers, with subtasks of the job

        def restored():  # the same job, running again, from a checkpoint it restored
            state = httpx.get(f"{cluster.url}/jobs/{job}", timeout=5).json()["state"]
            latest = httpx.get(f"{cluster.url}/jobs/{job}/checkpoints", timeout=5).json()["latest"]
            return state == "RUNNING" and (latest.get("restored") or {}).get("id")

        wait_until(restored, 120, interval=1, message=lambda: f"job restored; {cluster.log('jobmanager')[-2000:]}")
        produce(w1_after)
        produce([event(999, T0 + 30_000, sites[0])], pause=0)  # closes W1
        wait_until(lambda: rows_for(T0 + WINDOW), 120, interval=1, message="W1 emitted after the restart")
        time.sleep(3)
    finally:
        speed.kill()

    assert_each_window_once(rows_for, {T0: w0, T0 + WINDOW: w1_before + w1_after})
