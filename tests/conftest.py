from __future__ import annotations

import pytest

from tests.harness import Broker, Service, make_settings


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path / "data")


@pytest.fixture
def broker(settings):
    b = Broker(settings).start()
    yield b
    b.kill()


@pytest.fixture
def services(settings, tmp_path):
    """Start `pixel <command>` processes on demand; all are stopped at teardown."""
    started: list[Service] = []

    def start(command: str) -> Service:
        svc = Service(command, settings, tmp_path).start()
        started.append(svc)
        return svc

    yield start
    for svc in reversed(started):
        svc.kill()


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """One real SparkSession (local[2]) for the whole test run: starting one costs 5-20 s."""
    from batch_layer.spark import spark_session

    session = spark_session(make_settings(tmp_path_factory.mktemp("spark")))
    yield session
    session.stop()
