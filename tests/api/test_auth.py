"""API keys and rate limits: a key sees only its own jobs, 429 with Retry-After, headers everywhere."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from api import auth
from tests.jobs.helpers import csv_text, submit


@pytest.fixture
def keys(app, database_url):
    from db.engine import transaction

    with transaction(database_url) as conn:
        made = {name: auth.create_key(conn, f"test-{name}", tier)
                for name, tier in (("alice", "standard"), ("bob", "standard"), ("slow", "free"))}
    auth._cache.clear()
    yield made
    with transaction(database_url) as conn:
        conn.execute(text("DELETE FROM api_keys WHERE name LIKE 'test-%'"))
    auth._cache.clear()


def test_the_api_is_open_while_no_key_exists(client):
    response = client.get("/v1/jobs/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert int(response.headers["RateLimit-Limit"]) > 0 and "RateLimit-Remaining" in response.headers


def test_once_a_key_exists_every_call_needs_one(client, keys):
    missing = client.get("/v1/jobs/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 401 and missing.get_json()["error"]["code"] == "API_KEY_REQUIRED"
    assert "RateLimit-Limit" in missing.headers
    wrong = client.get("/v1/jobs/x", headers={"X-API-Key": "icdq_nope"})
    assert wrong.status_code == 401 and wrong.get_json()["error"]["code"] == "INVALID_API_KEY"
    assert client.get("/healthz").status_code == 200


def test_a_key_sees_only_its_own_jobs(client, keys, conn):
    alice, bob = {"X-API-Key": keys["alice"]}, {"X-API-Key": keys["bob"]}
    posted = submit(client, csv_text("claim_id,dx1", "A,I10"), alice)
    assert posted.status_code == 202
    job_id = posted.get_json()["id"]
    assert client.get(f"/v1/jobs/{job_id}", headers=alice).status_code == 200
    for call in (client.get, client.delete):
        assert call(f"/v1/jobs/{job_id}", headers=bob).status_code == 404
    assert client.get(f"/v1/jobs/{job_id}/results", headers=bob).status_code == 404
    stored = conn.execute(text("SELECT key_hash FROM api_keys WHERE name = 'test-alice'")).scalar_one()
    assert stored != keys["alice"] and stored == auth.hash_key(keys["alice"])


def test_over_the_limit_is_429_with_retry_after(client, keys):
    slow = {"X-API-Key": keys["slow"]}
    answers = [client.get("/v1/releases", headers=slow) for _ in range(61)]
    assert [a.status_code for a in answers[:60]] == [200] * 60
    refused = answers[60]
    assert refused.status_code == 429 and refused.get_json()["error"]["code"]
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.headers["RateLimit-Limit"] == "60" and refused.headers["RateLimit-Remaining"] == "0"


def test_the_limit_counts_down_by_one_each_call_in_one_redis_round_trip(client, keys, app):
    from redis import Redis

    slow = {"X-API-Key": keys["slow"]}
    redis = Redis.from_url(app.config["CACHE_URL"])  # where the limits are kept (limits spells a socket redis+unix:)

    def evalsha_calls() -> int:
        return int(redis.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))

    # Another key's call first: a Redis that has not yet seen the script answers the first EVALSHA
    # with NOSCRIPT and redis-py sends it again (run alone on a fresh Redis, this test counted 6).
    client.get("/v1/releases", headers={"X-API-Key": keys["alice"]})
    before = evalsha_calls()
    remaining = [int(client.get("/v1/releases", headers=slow).headers["RateLimit-Remaining"]) for _ in range(5)]
    assert remaining == [59, 58, 57, 56, 55]
    assert evalsha_calls() - before == 5  # the hit and the window for the headers: one script
    # What it keeps is limits' own moving window: the library's strategy reads the same count.
    storage = auth.limiter_of(app).storage
    [key] = [k.decode().removeprefix(f"{storage.key_prefix}:")
             for k in redis.scan_iter(match=f"*{auth.hash_key(keys['slow'])}*")]
    assert storage.get_moving_window(key, 60, 60)[1] == 5


def test_another_app_with_its_own_limit_storage_leaves_this_apps_limits_alone(client, keys, app, settings):
    from api import create_app

    slow = {"X-API-Key": keys["slow"]}
    assert client.get("/v1/releases", headers=slow).headers["RateLimit-Remaining"] == "59"
    other = create_app(settings, CACHE_URL="redis://127.0.0.1:1/0", RATELIMIT_STORAGE_URI="memory://")
    assert other.test_client().get("/healthz").status_code == 200
    # this app still counts in Redis, where its earlier call was counted, not in the other's memory
    assert client.get("/v1/releases", headers=slow).headers["RateLimit-Remaining"] == "58"


def test_calls_older_than_the_window_count_for_nothing_and_a_full_window_refuses(app):
    from limits import parse
    from limits.strategies import MovingWindowRateLimiter

    from api.ratelimit import NAMESPACE, OneTripMovingWindow

    storage = auth.limiter_of(app).storage
    one_trip, library = OneTripMovingWindow(storage), MovingWindowRateLimiter(storage)
    item, who = parse("3/minute"), f"test-window-{time.time_ns()}"
    key = storage.prefixed_key(item.key_for(NAMESPACE, who))
    connection = storage.get_connection()
    connection.lpush(key, *[time.time() - 61 - i for i in range(5)])  # five calls of over a minute ago
    assert one_trip.hit(item, NAMESPACE, who)
    assert one_trip.get_window_stats(item, NAMESPACE, who).remaining == 2
    assert connection.llen(key) == 1  # the stale ones are gone, not only skipped
    assert one_trip.hit(item, NAMESPACE, who) and one_trip.hit(item, NAMESPACE, who)
    assert not one_trip.hit(item, NAMESPACE, who)  # the fourth within the minute
    stats = one_trip.get_window_stats(item, NAMESPACE, who)
    assert stats.remaining == 0 and 55 < stats.reset_time - time.time() <= 60
    assert library.get_window_stats(item, NAMESPACE, who).remaining == 0  # limits reads the same window
    assert not library.hit(item, NAMESPACE, who)
