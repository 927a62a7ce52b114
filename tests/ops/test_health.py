"""/readyz against the real services: the cache is `degraded` whenever searches bypass it."""

from __future__ import annotations

import pytest

from cache.client import shared_cache


@pytest.fixture
def breaker(app):
    """The app process's cache breaker, closed again after the test whatever happened."""
    cache = shared_cache(app.config["CACHE_URL"])
    yield cache.breaker
    cache.breaker.close()


def test_an_open_cache_breaker_is_reported_as_degraded_though_redis_answers(client, breaker) -> None:
    assert client.get("/readyz").get_json()["checks"]["cache"]["state"] == "up"
    breaker.open()
    cache = client.get("/readyz").get_json()["checks"]["cache"]
    assert cache["state"] == "degraded"
    assert cache["breaker"] == "open"
    assert client.get("/v1/search?q=asthma").get_json()["results"][0]["code"] == "J45.909"  # from PostgreSQL
    breaker.close()
    assert client.get("/readyz").get_json()["checks"]["cache"]["state"] == "up"


def test_a_cache_redis_that_does_not_answer_is_degraded_not_down(settings) -> None:
    from api import create_app

    app = create_app(settings, CACHE_URL="redis://127.0.0.1:1/0", RATELIMIT_STORAGE_URI="memory://")
    report = app.test_client().get("/readyz").get_json()
    assert report["checks"]["cache"]["state"] == "degraded"
    assert report["checks"]["cache"]["error"] == "no answer"
    assert report["checks"]["database"]["state"] == "up"
