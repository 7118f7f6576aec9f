"""`pixel serve` as a real process against a real broker: it ingests pixel.agg into the embedded
store and answers the Stats API from the batch views for closed days and the store for today."""

from __future__ import annotations

import datetime as dt
import signal

import httpx
import orjson
import pytest
from confluent_kafka import Producer

from core.lake.storage import FileStorage
from events.days import day_bounds
from infra.tansu import wait_for_port
from serving.registry import Registry
from tests.harness import wait_until
from tests.serving.conftest import agg_row, clean_event, close_day, ids

pytestmark = pytest.mark.slow


def test_serve_answers_closed_days_from_batch_and_today_from_the_stream(settings, broker, services):
    today = dt.datetime.now(dt.UTC).date()
    closed = today - dt.timedelta(days=1)
    storage = FileStorage(settings.data_dir)
    start_closed = day_bounds(closed)[0]
    close_day(
        storage, closed, [clean_event("a.example", start_closed + i * 1000, f"v{i % 40}", "/") for i in range(120)]
    )
    registry = Registry(settings.registry_database_url)
    registry.create_site("a.example", public=True)
    registry.create_site("secret.example")
    registry.create_goal("a.example", page="/")  # the app reads goals from the registry

    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    start = day_bounds(today)[0]
    for row in [
        agg_row(start + 60_000, 7, ids("t", 3), page="/"),
        agg_row(start + 120_000, 5, ids("t", 4), page="/"),
    ]:
        producer.produce(settings.agg_topic, orjson.dumps(row), key=b"a.example")
    producer.flush(10)

    serve = services("serve")
    wait_for_port(settings.serving_host, settings.serving_port, 60)
    base = f"http://{settings.serving_host}:{settings.serving_port}"
    wait_until(lambda: httpx.get(f"{base}/healthz").json()["ingested"] == 2, 60, message="pixel.agg ingested")
    wait_until(
        lambda: httpx.get(f"{base}/healthz").json()["batch_watermark"] == str(closed),
        30,
        message="the closed day loaded into the store",
    )

    def pageviews(period: str, **params) -> int:
        r = httpx.get(
            f"{base}/api/v1/stats/aggregate",
            params={"site_id": "a.example", "period": period, "metrics": "pageviews,visitors", **params},
        )
        assert r.status_code == 200, r.text
        return r.json()["results"]["pageviews"]["value"]

    assert pageviews("day", date=str(closed)) == 120
    assert pageviews("day") == 12
    assert pageviews("7d") == 132
    goals = httpx.get(
        f"{base}/api/v1/stats/breakdown",
        params={
            "site_id": "a.example",
            "period": "day",
            "date": str(closed),
            "property": "event:goal",
            "metrics": "visitors,events,conversion_rate",
        },
    ).json()["results"]
    assert goals == [{"goal": "Visit /", "visitors": 40, "events": 120, "conversion_rate": 100.0}]
    assert httpx.get(f"{base}/api/v1/stats/aggregate", params={"site_id": "secret.example"}).status_code == 401
    assert httpx.get(f"{base}/healthz").json()["batch_watermark"] == str(closed)
    metrics = httpx.get(f"{base}/metrics").text
    assert 'pixel_serving_requests_total{route="/api/v1/stats/aggregate",status="200"} 3.0' in metrics
    assert 'status="401"' in metrics and "pixel_batch_watermark_lag_days 1.0" in metrics
    assert "pixel_serving_ingested_rows 2.0" in metrics
    # uvicorn shuts down gracefully (lifespan: the ingestor stops), then re-raises SIGTERM.
    assert serve.stop() == -signal.SIGTERM and "Traceback" not in serve.log()
