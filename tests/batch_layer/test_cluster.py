"""The same batch job submitted with spark-submit to a real Spark standalone cluster (a master and
a worker JVM from pyspark's own distribution): the cluster's executors run the events library in
their Python workers, and the day closes exactly as under local[2]."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from core.lake.storage import FileStorage
from core.lake.watermark import read_watermark
from core.process import die_with_this_process
from infra.engines import prepare_environment
from tests.batch_layer.test_job import BAD_REASONS, D, build_dataset
from tests.harness import free_port, make_settings, settings_env, wait_until

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def spark_bin(name: str) -> str:
    import pyspark

    return str(Path(pyspark.__file__).parent / "bin" / name)


@pytest.fixture
def cluster(tmp_path):
    prepare_environment()
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(tmp_path / "logs"),
        "SPARK_NO_DAEMONIZE": "1",
    }
    port, ui = free_port(), free_port()
    procs = [
        subprocess.Popen(
            [
                spark_bin("spark-class"),
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--webui-port",
                str(ui),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "master.log", "wb"),
            start_new_session=True,
            preexec_fn=die_with_this_process(),
        )
    ]
    procs.append(
        subprocess.Popen(
            [
                spark_bin("spark-class"),
                "org.apache.spark.deploy.worker.Worker",
                "--host",
                "127.0.0.1",
                "--cores",
                "2",
                "--memory",
                "2g",
                "--work-dir",
                str(tmp_path / "work"),
                "--webui-port",
                str(free_port()),
                f"spark://127.0.0.1:{port}",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "worker.log", "wb"),
            start_new_session=True,
            preexec_fn=die_with_this_process(),
        )
    )

    def workers_alive():
        try:
            return httpx.get(f"http://127.0.0.1:{ui}/json/", timeout=2).json().get("aliveworkers", 0) >= 1
        except (httpx.HTTPError, ValueError):
            return False

    wait_until(workers_alive, 90, interval=1, message="a Spark worker registered with the master")
    yield f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui}/json/"
    for proc in procs:
        os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        proc.wait(timeout=30)


def test_spark_submit_to_a_standalone_cluster_closes_the_day(cluster, tmp_path):
    master, status = cluster
    data = make_settings(tmp_path / "data", batch_lateness_hours=2)
    build_dataset(data.data_dir)
    env = {
        **settings_env(data),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "PYTHONPATH": str(ROOT),
    }
    out = subprocess.run(
        [
            spark_bin("spark-submit"),
            "--master",
            master,
            "--conf",
            "spark.ui.enabled=false",
            str(ROOT / "batch_layer" / "submit.py"),
            "--date",
            str(D),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    storage = FileStorage(data.data_dir)
    run = json.loads(storage.read(f"views/_runs/date={D}.json"))
    # The numbers test_job.py asserts for local[2]: same job, same answer on the cluster.
    assert (run["read"], run["duplicates"], run["bots"], run["clean"]) == (26, 3, 2, 13)
    assert run["bad"] == BAD_REASONS and read_watermark(storage) == D
    apps = httpx.get(status, timeout=5).json()["completedapps"]
    assert [a["name"] for a in apps] == ["pixel-batch"]  # it ran on the cluster, not in a local JVM
