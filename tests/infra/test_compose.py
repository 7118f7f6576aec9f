"""docker-compose.yml: valid for docker-compose, and consistent with our settings and images."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from core.settings import Settings

pytestmark = pytest.mark.fast
ROOT = Path(__file__).resolve().parents[2]
# Ports daemons listen on by default inside the compose network (not published to the host).
DAEMON_DEFAULT_PORTS = {"datanode": "9864"}  # Hadoop's dfs.datanode.http.address


@pytest.fixture(scope="module")
def resolved() -> dict:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail("docker-compose is missing: run `make setup` (installs Debian's docker-compose)")
    out = subprocess.run(
        [exe, "-f", str(ROOT / "docker-compose.yml"), "config"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)


def test_has_the_production_services(resolved):
    assert {
        "kafka",
        "namenode",
        "datanode",
        "collector",
        "lander",
        "flink-jobmanager",
        "flink-taskmanager",
        "speed-job",
        "zookeeper",
        "druid-postgres",
        "druid-coordinator",
        "druid-broker",
        "druid-historical",
        "druid-middlemanager",
        "druid-router",
        "druid-supervisor",
    } <= set(resolved["services"])
    assert resolved["services"]["kafka"]["image"].startswith("apache/kafka:")
    assert resolved["services"]["namenode"]["image"].startswith("apache/hadoop:")


def test_pixel_env_names_real_settings_and_parses(resolved, monkeypatch):
    fields = {f"PIXEL_{name.upper()}" for name in Settings.model_fields}
    for name in ("collector", "lander", "batch-nightly", "serving"):
        env = resolved["services"][name]["environment"]
        pixel_env = {k: v for k, v in env.items() if k.startswith("PIXEL_")}
        unknown = set(pixel_env) - fields - {"PIXEL_DATA_DIR"}
        assert not unknown, f"{name}: {unknown} are not settings (typo?)"
        with monkeypatch.context() as env_patch:  # parsed exactly as the container will
            for k, v in pixel_env.items():
                env_patch.setenv(k, str(v))
            assert Settings().kafka_bootstrap == "kafka:9092"


def test_lander_writes_to_hdfs_on_the_namenode(resolved):
    env = resolved["services"]["lander"]["environment"]
    assert env["PIXEL_STORAGE_URL"].startswith("hdfs://namenode:9870/")
    nn_env = resolved["services"]["namenode"]["environment"]
    assert nn_env["HDFS-SITE.XML_dfs.webhdfs.enabled"] == "true"


def test_kafka_is_kraft_and_advertises_its_service_name(resolved):
    env = resolved["services"]["kafka"]["environment"]
    assert "controller" in env["KAFKA_PROCESS_ROLES"]
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_dockerfile_copies_only_what_exists():
    dockerfile = (ROOT / "infra/docker/Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert (ROOT / src).exists(), f"Dockerfile copies missing {src}"


def test_flink_cluster_runs_the_speed_job_from_the_pixel_image(resolved):
    services = resolved["services"]
    image = services["collector"]["image"]
    for name in ("flink-jobmanager", "flink-taskmanager", "speed-job"):
        assert services[name]["image"] == image  # same PyFlink 2.3 + Python 3.11 everywhere
    # `pixel speed --jobmanager` (the image's entrypoint is `pixel`): submits once, then follows.
    cmd = services["speed-job"]["command"]
    assert cmd[:2] == ["speed", "--jobmanager"] and "entrypoint" not in services["speed-job"]
    host, port = cmd[2].split(":")
    assert host == "flink-jobmanager" and port == "8081"  # its REST endpoint (Flink's default port)
    assert "jobmanager.rpc.address=flink-jobmanager" in services["flink-taskmanager"]["command"]
    # The image holds every package the job imports, and the cluster's Python UDF runtime.
    dockerfile = (ROOT / "infra" / "docker" / "Dockerfile").read_text()
    for package in ("core", "events", "speed_layer", "infra"):
        assert f"COPY {package} {package}" in dockerfile
    assert "cp /opt/flink/opt/flink-python-*.jar /opt/flink/lib/" in dockerfile


def test_druid_loads_the_extensions_the_spec_needs_and_gets_the_spec(resolved):
    services = resolved["services"]
    extensions = services["druid-coordinator"]["environment"]["druid_extensions_loadList"]
    assert "druid-datasketches" in extensions and "druid-kafka-indexing-service" in extensions
    submit = services["druid-supervisor"]
    # docker-compose v1 renders a bind mount as "source:target[:mode]"
    mounted = [v.split(":")[0] for v in submit["volumes"] if v.split(":")[1] == "/spec"][0]
    posted = [a for a in submit["command"] if a.startswith("@")][0].removeprefix("@/spec/")
    assert (Path(mounted) / posted).is_file()


def test_spark_cluster_runs_the_nightly_batch_from_hdfs(resolved):
    import pyspark

    from core.settings import Settings

    services = resolved["services"]
    assert services["spark-master"]["image"] == f"apache/spark:{pyspark.__version__}"  # driver == cluster
    assert services["spark-worker"]["image"] == services["collector"]["image"]  # executors import events/
    assert "spark://spark-master:7077" in " ".join(services["spark-worker"]["entrypoint"])
    batch = services["batch-nightly"]
    assert batch["command"] == ["batch", "--nightly"]
    env = batch["environment"]
    assert env["PIXEL_SPARK_MASTER"] == "spark://spark-master:7077"
    assert "--port" in services["spark-master"]["command"] and "7077" in services["spark-master"]["command"]
    settings = Settings(storage_url=env["PIXEL_STORAGE_URL"], spark_master=env["PIXEL_SPARK_MASTER"])
    assert settings.spark_root == "webhdfs://namenode:9870/pixel"  # Spark's own Hadoop client, over WebHDFS


def test_serving_uses_druid_and_the_postgres_registry(resolved):
    from sqlalchemy.engine import make_url

    services = resolved["services"]
    env = services["serving"]["environment"]
    assert services["serving"]["command"] == ["serve"] and env["PIXEL_REALTIME_STORE"] == "druid"
    assert env["PIXEL_DRUID_HOST"] in services and env["PIXEL_DRUID_PORT"] == "8082"
    url = make_url(env["PIXEL_REGISTRY_URL"])
    assert url.drivername == "postgresql+psycopg" and url.host in services
    pg = services[url.host]["environment"]
    assert (url.username, url.password, url.database) == (
        pg["POSTGRES_USER"],
        pg["POSTGRES_PASSWORD"],
        pg["POSTGRES_DB"],
    )


def test_prometheus_scrapes_services_that_exist_on_their_ports(resolved):
    services = resolved["services"]
    mount = [v for v in services["prometheus"]["volumes"] if ":/etc/prometheus/prometheus.yml" in v][0]
    config = yaml.safe_load(Path(mount.split(":")[0]).read_text())
    targets = [t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    for target in targets:
        host, port = target.split(":")
        if host == "localhost":
            continue
        assert host in services, target
        command = " ".join(
            map(str, [*(services[host].get("command") or []), *(services[host].get("entrypoint") or [])])
        )
        published = [
            str(p["target"]) if isinstance(p, dict) else str(p).split(":")[-1] for p in services[host].get("ports", [])
        ]  # docker-compose v1 renders dicts
        env_ports = [str(v) for k, v in (services[host].get("environment") or {}).items() if k.endswith("_PORT")]
        assert (
            port in published
            or port in env_ports
            or DAEMON_DEFAULT_PORTS.get(host) == port
            or re.search(rf"port[= ]{port}\b", command)
        ), f"{target}: nothing listens there"
