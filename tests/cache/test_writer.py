"""Write-behind against the real Redis: queued values land with their TTL and tags, in batches;
with Redis down they are dropped without an error."""

from __future__ import annotations

import time
import uuid

import orjson

from cache.announce import CHANNEL
from cache.client import Cache
from cache.tags import PREFIX
from cache.writer import write_behind
from tests.waiting import eventually


def test_queued_values_land_with_ttl_and_tags(endpoints) -> None:
    cache = Cache(endpoints.cache_url)
    tag = f"kind:wb{uuid.uuid4().hex}"
    keys = [f"{PREFIX}wb:{uuid.uuid4().hex}" for _ in range(600)]  # more than one batch
    writer = write_behind(cache)
    for i, key in enumerate(keys):
        writer.set(key, {"n": i}, 60, [tag])
    assert eventually(lambda: cache.get(keys[-1]) is not None, timeout=10, interval=0.02)
    assert cache.get_many(keys) == [{"n": i} for i in range(len(keys))]
    assert 0 < cache.redis.ttl(keys[0]) <= 60
    assert cache.invalidate_tags([tag]) == len(keys)


def test_with_redis_down_writes_are_dropped_quietly() -> None:
    down = Cache("redis://127.0.0.1:1/0", fail_max=1, reset_timeout=60)
    writer = write_behind(down)
    writer.set(f"{PREFIX}wb:x", 1, 60)
    assert eventually(lambda: not writer.pending, timeout=10, interval=0.02)
    # Its own breaker opens (once the write it took has failed): later writes skip Redis at once.
    assert eventually(lambda: writer.cache.state == "degraded", timeout=10, interval=0.02)
    assert writer.thread.is_alive()
    assert writer.cache is not down and writer.cache.url == down.url


def test_writes_arriving_one_by_one_share_pipelines(endpoints) -> None:
    """Requests queue one value each; the writer gathers them, so a trickle of 60 writes over ~0.1 s
    costs a few pipelines (one announcement each), not 60 (one per write cost ~240 us a key)."""
    cache = Cache(endpoints.cache_url)
    pubsub = cache.redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    marker = uuid.uuid4().hex
    keys = [f"{PREFIX}wb:{marker}:{i}" for i in range(60)]
    writer = write_behind(cache)
    for key in keys:
        writer.set(key, 1, 60, [f"kind:wb{marker}"])
        time.sleep(0.002)
    heard: list[list[str]] = []
    deadline = time.monotonic() + 10
    while sum(map(len, heard)) < len(keys) and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.2)
        if message and marker.encode() in message["data"]:
            heard.append([key for key, _ in orjson.loads(message["data"])])
    pubsub.close()
    assert sorted(k for batch in heard for k in batch) == sorted(keys)
    assert len(heard) <= 6
    cache.invalidate_tags([f"kind:wb{marker}"])
