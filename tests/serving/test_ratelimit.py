"""Rate limits on the Stats API: per token, or per address without one; 429 with Retry-After."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from serving.ratelimit import TokenBuckets, install_rate_limits

pytestmark = pytest.mark.fast


def test_a_bucket_allows_its_burst_then_its_rate():
    now = [0.0]
    buckets = TokenBuckets(per_hour=3600, burst=3, clock=lambda: now[0])  # one a second
    assert [buckets.take("k") for _ in range(3)] == [0, 0, 0]
    assert buckets.take("k") == pytest.approx(1.0)
    now[0] += 0.5
    assert buckets.take("k") == pytest.approx(0.5)
    now[0] += 0.5
    assert buckets.take("k") == 0 and buckets.take("other") == 0


@pytest.fixture
def client():
    app = FastAPI()
    app.get("/api/v1/stats/aggregate")(lambda: {"results": {}})
    app.get("/healthz")(lambda: {"status": "ok"})
    install_rate_limits(app, per_hour=2, burst=2, trusted_proxies=["127.0.0.0/8"], dashboard=(3, 3))
    return TestClient(app, client=("127.0.0.1", 50000))


def test_429_with_retry_after_per_token_and_per_address(client):
    ok = [client.get("/api/v1/stats/aggregate").status_code for _ in range(2)]
    refused = client.get("/api/v1/stats/aggregate")
    assert ok == [200, 200] and refused.status_code == 429
    assert int(refused.headers["retry-after"]) == 1800 and "2 requests an hour" in refused.json()["error"]
    token = {"Authorization": "Bearer abc"}
    assert client.get("/api/v1/stats/aggregate", headers=token).status_code == 200  # its own bucket
    other = {"X-Forwarded-For": "203.0.113.7"}  # from a trusted proxy: the client behind it
    assert client.get("/api/v1/stats/aggregate", headers=other).status_code == 200
    assert client.get("/healthz").status_code == 200  # not the API: not limited


def test_the_dashboards_requests_have_their_own_budget(client):
    dashboard = {"X-Pixel-Dashboard": "1"}
    assert [client.get("/api/v1/stats/aggregate").status_code for _ in range(3)] == [200, 200, 429]
    assert [client.get("/api/v1/stats/aggregate", headers=dashboard).status_code for _ in range(4)] == [200] * 3 + [429]
    assert "3 requests an hour" in client.get("/api/v1/stats/aggregate", headers=dashboard).json()["error"]
