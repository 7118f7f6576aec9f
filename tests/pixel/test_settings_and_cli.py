import subprocess
import sys

import pytest

from core.settings import Settings

pytestmark = pytest.mark.fast


def test_env_prefix_and_derived_bootstrap(monkeypatch):
    monkeypatch.setenv("PIXEL_BROKER_PORT", "19999")
    monkeypatch.setenv("PIXEL_TRUSTED_PROXIES", '["10.0.0.0/8"]')
    s = Settings()
    assert s.kafka_bootstrap == "127.0.0.1:19999" and s.trusted_proxies == ["10.0.0.0/8"]
    monkeypatch.setenv("PIXEL_KAFKA_BOOTSTRAP", "kafka:9092")
    assert Settings().kafka_bootstrap == "kafka:9092"


def test_speed_parallelism_above_the_partitions_is_refused():
    """A source subtask without a partition holds every window back (idle detection is off):
    at parallelism 2 on one partition the job emitted nothing in 90 s, at 1 it did in 14 s."""
    assert Settings(speed_parallelism=4, raw_partitions=4).speed_parallelism == 4
    with pytest.raises(ValueError, match=r"PIXEL_SPEED_PARALLELISM \(5\) is above pixel.raw's partitions"):
        Settings(speed_parallelism=5, raw_partitions=4)


def test_storage_root_defaults_to_the_data_dir(tmp_path):
    assert Settings(data_dir=tmp_path).storage_root == f"file://{tmp_path.resolve()}"


@pytest.mark.parametrize(
    "cmd",
    [
        *([c] for c in ("up", "broker", "collector", "lander", "demo", "batch", "drift", "sites", "tokens")),
        *([c] for c in ("goals", "lineage", "reprocess")),
        ["sites", "delete"],
        [],
    ],
)
def test_help_explains_every_command(cmd):
    out = subprocess.run([sys.executable, "-m", "pixel.cli", *cmd, "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "Usage" in out.stdout


def test_sites_and_tokens_commands(tmp_path):
    env = {**__import__("os").environ, "PIXEL_DATA_DIR": str(tmp_path)}

    def pixel(*args):
        return subprocess.run(
            [sys.executable, "-m", "pixel.cli", *args], capture_output=True, text=True, env=env, timeout=60
        )

    assert pixel("sites", "create", "Example.com").stdout.startswith("created example.com (private)")
    assert pixel("sites", "create", "pub.example", "--public").returncode == 0
    again = pixel("sites", "create", "example.com")
    assert again.returncode == 1 and "already exists" in again.stderr
    token = pixel("tokens", "create", "example.com")
    assert token.returncode == 0 and token.stdout.strip().startswith("px_") and "shown once" in token.stderr
    assert pixel("tokens", "create", "nope.example").returncode == 1
    listing = pixel("sites", "list").stdout
    assert "example.com" in listing and "private" in listing and "pub.example" in listing and "public" in listing

    from serving.registry import Registry

    assert Registry(f"sqlite:///{tmp_path / 'registry.db'}").can_read("example.com", token.stdout.strip())


def test_reprocess_refuses_days_never_closed(tmp_path):
    env = {**__import__("os").environ, "PIXEL_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "pixel.cli", "reprocess", "--from", "2026-11-01", "--to", "2026-11-02"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2 and "never closed" in done.stderr and "pixel batch" in done.stderr
