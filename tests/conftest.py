from __future__ import annotations

import shutil

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


@pytest.fixture
def browser():
    """Debian's headless Chromium, driven by Selenium."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as ChromeService

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.fail("Debian's chromium and chromium-driver are needed: run `make setup`")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1400"):
        options.add_argument(arg)
    drv = webdriver.Chrome(service=ChromeService(driver), options=options)
    yield drv
    drv.quit()
