"""A standalone Flink session cluster from the PyFlink wheel's own distribution: one JobManager
and N TaskManagers, each `bin/jobmanager.sh` / `bin/taskmanager.sh start-foreground` in its own
process (the same Flink that runs the local mini-cluster, and the same scripts the production
image runs in docker-compose). Tests and benchmarks start one on free loopback ports and submit
the speed layer to it with `pixel speed --jobmanager 127.0.0.1:PORT`.

    python -m infra.flink_cluster --taskmanagers 2 --rest-port 8081   # runs until Ctrl-C
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import yaml

from core.process import die_with_this_process
from infra.engines import prepare_environment
from infra.flink import TERMINAL_STATES
from infra.tansu import free_port

log = logging.getLogger(__name__)


def flink_home() -> Path:
    import pyflink

    return Path(pyflink.__file__).parent


def _flat(tree: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


class FlinkCluster:
    """One JobManager (REST on ``rest_port``) and ``taskmanagers`` TaskManagers of ``slots``
    slots each, on 127.0.0.1; configuration, logs and processes under ``work_dir``.

    ``heartbeat_seconds``: how soon a dead TaskManager is noticed and its tasks restarted
    elsewhere (Flink's default, 50 s, is for networks that hiccup; a test kills on purpose)."""

    def __init__(
        self,
        work_dir: Path,
        rest_port: int = 0,
        taskmanagers: int = 2,
        slots: int = 2,
        heartbeat_seconds: float = 50,
        taskmanager_memory: str = "1536m",
    ) -> None:
        self.work_dir = work_dir
        self.rest_port = rest_port or free_port()
        self.slots, self.count = slots, taskmanagers
        self.heartbeat_seconds = heartbeat_seconds
        self.taskmanager_memory = taskmanager_memory
        self.jobmanager: subprocess.Popen | None = None
        self.taskmanagers: list[subprocess.Popen] = []

    @property
    def address(self) -> str:
        """HOST:PORT of the REST endpoint: what `pixel speed --jobmanager` takes."""
        return f"127.0.0.1:{self.rest_port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def _configure(self) -> Path:
        conf = self.work_dir / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        shipped = flink_home() / "conf"
        for name in ("log4j-console.properties", "log4j.properties", "logback-console.xml"):
            (conf / name).write_bytes((shipped / name).read_bytes())
        values = _flat(yaml.safe_load((shipped / "config.yaml").read_text()))
        heartbeat_ms = round(self.heartbeat_seconds * 1000)
        values |= {
            "jobmanager.rpc.address": "127.0.0.1",
            "jobmanager.rpc.port": free_port(),
            "jobmanager.bind-host": "127.0.0.1",
            "jobmanager.memory.process.size": "1024m",
            "rest.address": "127.0.0.1",
            "rest.bind-address": "127.0.0.1",
            "rest.port": self.rest_port,
            "taskmanager.host": "127.0.0.1",
            "taskmanager.bind-host": "127.0.0.1",
            "taskmanager.rpc.port": "0",
            "taskmanager.data.port": "0",
            "taskmanager.numberOfTaskSlots": self.slots,
            "taskmanager.memory.process.size": self.taskmanager_memory,
            "blob.server.port": "0",
            # A job's subtasks spread over the TaskManagers (not packed into the first one's slots).
            "taskmanager.load-balance.mode": "SLOTS",
            "heartbeat.interval": str(min(10_000, max(500, heartbeat_ms // 5))),
            "heartbeat.timeout": str(heartbeat_ms),
            # A failed task restarts the job from its last checkpoint, as often as it takes.
            "restart-strategy.type": "fixed-delay",
            "restart-strategy.fixed-delay.attempts": "2147483647",
            "restart-strategy.fixed-delay.delay": "1 s",
        }
        (conf / "config.yaml").write_text(yaml.safe_dump({k: str(v) for k, v in values.items()}))
        return conf

    def _libraries(self) -> Path:
        """The distribution's lib/ plus opt/'s flink-python jar: a cluster runs Python UDFs only
        with it on its classpath (PyFlink adds it to its own mini-cluster; the scripts don't)."""
        lib = self.work_dir / "lib"
        lib.mkdir(parents=True, exist_ok=True)
        for jar in [*(flink_home() / "lib").glob("*.jar"), *(flink_home() / "opt").glob("flink-python-*.jar")]:
            link = lib / jar.name
            if not link.exists():
                link.symlink_to(jar)
        return lib

    def _start(self, script: str, name: str) -> subprocess.Popen:
        env = dict(
            os.environ,
            FLINK_CONF_DIR=str(self.work_dir / "conf"),
            FLINK_LOG_DIR=str(self.work_dir / "log"),
            FLINK_LIB_DIR=str(self.work_dir / "lib"),
        )
        log_file = open(self.work_dir / f"{name}.out", "ab")
        return subprocess.Popen(
            ["bash", str(flink_home() / "bin" / script), "start-foreground"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: a kill takes the JVM and its Python workers
            preexec_fn=die_with_this_process(),
        )

    def start(self, timeout: float = 120) -> FlinkCluster:
        prepare_environment()
        (self.work_dir / "log").mkdir(parents=True, exist_ok=True)
        self._configure()
        self._libraries()
        self.jobmanager = self._start("jobmanager.sh", "jobmanager")
        for _ in range(self.count):
            self.start_taskmanager()
        self.wait_for_taskmanagers(self.count, timeout)
        return self

    def start_taskmanager(self) -> subprocess.Popen:
        process = self._start("taskmanager.sh", f"taskmanager-{len(self.taskmanagers)}")
        self.taskmanagers.append(process)
        return process

    def overview(self) -> dict:
        return httpx.get(f"{self.url}/overview", timeout=5).json()

    def wait_for_taskmanagers(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.jobmanager is not None and self.jobmanager.poll() is not None:
                raise RuntimeError(f"the JobManager exited: {self.log('jobmanager')}")
            try:
                if self.overview().get("taskmanagers") == count:
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"{count} TaskManagers not registered after {timeout:.0f}s: {self.log('jobmanager')}")

    def jobs(self) -> list[dict]:
        """[{"jid", "name", "state", ...}] of every job the cluster knows."""
        return httpx.get(f"{self.url}/jobs/overview", timeout=5).json()["jobs"]

    def free_slots(self) -> list[int]:
        """Each registered TaskManager's free slots."""
        return [tm["freeSlots"] for tm in httpx.get(f"{self.url}/taskmanagers", timeout=5).json()["taskmanagers"]]

    def cancel_jobs(self) -> None:
        """Cancel every running job (a client that stops leaves its job to the cluster)."""
        for job in self.jobs():
            if job["state"] not in TERMINAL_STATES:
                httpx.patch(f"{self.url}/jobs/{job['jid']}", params={"mode": "cancel"}, timeout=10)

    def kill_taskmanager(self, index: int) -> None:
        """SIGKILL the TaskManager (its JVM and its Python workers)."""
        process = self.taskmanagers[index]
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def log(self, name: str, tail: int = 3000) -> str:
        """The end of a process's log (``jobmanager``, ``taskmanager-0``, ...): in the foreground,
        Flink logs to the console, which goes to ``<name>.out``."""
        path = self.work_dir / f"{name}.out"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def stop(self) -> None:
        for process in [*self.taskmanagers, self.jobmanager]:
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--taskmanagers", type=int, default=2, help="TaskManager processes (default 2).")
    parser.add_argument("--slots", type=int, default=2, help="Task slots per TaskManager (default 2).")
    parser.add_argument("--rest-port", type=int, default=8081, help="The JobManager's REST port (default 8081).")
    parser.add_argument("--dir", type=Path, default=Path("data/flink-cluster"), help="Configuration and logs.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cluster = FlinkCluster(args.dir, args.rest_port, args.taskmanagers, args.slots).start()
    log.info("Flink cluster up: REST %s, %d TaskManagers x %d slots", cluster.url, args.taskmanagers, args.slots)
    try:
        while all(p.poll() is None for p in [cluster.jobmanager, *cluster.taskmanagers]):
            time.sleep(1)
        log.error("a cluster process exited; stopping")
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
