"""The one Redis cache client: JSON values (zlib-compressed when large), TTLs everywhere, tags,
and a circuit breaker so that a slow or absent Redis costs one short timeout, then nothing.

Every method degrades instead of raising: a read answers "miss", a write is skipped. PostgreSQL
stays the source of truth; the caller goes there for whatever the cache did not answer.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
import pybreaker
import redis

from cache.tags import PREFIX, tag_key
from ops.background import PerProcess

log = logging.getLogger("icdq.cache")

# Bytes of JSON; smaller values are stored as they are: a search answer of 10 results (~1.2 KB)
# costs zlib ~10 us to write and again to read, for ~800 bytes of Redis memory.
COMPRESS_OVER = 4096
SOCKET_TIMEOUT = 0.25  # seconds: a cache slower than this is worse than no cache
DEFAULT_TTL = 24 * 3600
TAG_TTL = 7 * 24 * 3600 + 60  # no value is cached longer than a week
_PLAIN, _ZLIB = b"j", b"z"

# Deletes every key listed in each tag set, then the sets: one atomic step on the server.
_INVALIDATE_LUA = """
local removed = 0
for _, tag in ipairs(KEYS) do
    local members = redis.call('SMEMBERS', tag)
    for i = 1, #members, 500 do
        removed = removed + redis.call('DEL', unpack(members, i, math.min(i + 499, #members)))
    end
    redis.call('DEL', tag)
end
return removed
"""


def encode(value: Any) -> bytes:
    raw = orjson.dumps(value)
    return _ZLIB + zlib.compress(raw, 1) if len(raw) > COMPRESS_OVER else _PLAIN + raw


def decode(blob: bytes | None) -> Any:
    if blob is None:
        return None
    if blob[:1] == _ZLIB:
        return orjson.loads(zlib.decompress(blob[1:]))
    return orjson.loads(blob[1:])


class Cache:
    """A cache on one Redis URL. Share one instance per process (it holds the breaker state)."""

    def __init__(self, url: str, fail_max: int = 3, reset_timeout: float = 5.0) -> None:
        self.url = url
        self.redis = redis.Redis.from_url(
            url, socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=SOCKET_TIMEOUT,
            health_check_interval=30, max_connections=64)
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max, reset_timeout=reset_timeout, name="cache",
            exclude=[lambda err: not isinstance(err, redis.RedisError)])
        self._invalidate = self.redis.register_script(_INVALIDATE_LUA)

    @property
    def state(self) -> str:
        """`up`, or `degraded` while the breaker is open (answers come from PostgreSQL)."""
        return "up" if self.breaker.current_state != pybreaker.STATE_OPEN else "degraded"

    @property
    def breaker_state(self) -> str:
        """The circuit breaker's state: `closed` (using Redis), `open` (skipping it) or `half-open`."""
        return str(self.breaker.current_state).replace("_", "-")

    def _call(self, fn, *args, default=None):
        try:
            return self.breaker.call(fn, *args)
        except (pybreaker.CircuitBreakerError, redis.RedisError) as err:
            log.debug("cache unavailable: %s", type(err).__name__)
            return default

    def ping(self) -> bool:
        """Whether Redis answers, asked through the breaker (refused at once while it is open)."""
        return bool(self._call(self.redis.ping, default=False))

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        """Values in `keys` order; None for a miss (or for every key when Redis is down)."""
        if not keys:
            return []
        blobs = self._call(self.redis.mget, list(keys), default=None)
        if blobs is None:
            return [None] * len(keys)
        return [decode(b) for b in blobs]

    def get(self, key: str) -> Any:
        return self.get_many([key])[0]

    def set_many(self, items: Mapping[str, Any], ttl: int = DEFAULT_TTL, tags: Iterable[str] = (),
                 key_tags: Mapping[str, Iterable[str]] | None = None, announce: str | None = None) -> bool:
        """Store every item for `ttl` seconds, registered under `tags` (all keys) and `key_tags`
        (per key), in one pipeline round trip; with `announce`, the keys and their values are also
        published on that channel in the same round trip (cache.announce)."""
        if not items:
            return True
        members: dict[str, list[str]] = {tag_key(t): list(items) for t in tags}
        for key, extra in (key_tags or {}).items():
            for tag in extra:
                members.setdefault(tag_key(tag), []).append(key)

        def write() -> None:
            pipe = self.redis.pipeline(transaction=False)
            for key, value in items.items():
                pipe.set(key, encode(value), ex=ttl)
            for tag, keys in members.items():
                pipe.sadd(tag, *keys)
                pipe.expire(tag, TAG_TTL)  # outlives every member; Redis 6.2 has no EXPIRE GT
            if announce:
                pipe.publish(announce, orjson.dumps([[key, value] for key, value in items.items()]))
            pipe.execute()

        return self._call(write, default=False) is not False

    def set(self, key: str, value: Any, ttl: int = DEFAULT_TTL, tags: Iterable[str] = ()) -> bool:
        return self.set_many({key: value}, ttl, tags)

    def invalidate_tags(self, tags: Iterable[str]) -> int:
        """Remove exactly the keys registered under `tags` (atomically, server-side); returns the count."""
        keys = [tag_key(t) for t in tags]
        if not keys:
            return 0
        return int(self._call(self._invalidate, keys, default=0) or 0)

    def invalidate_pattern(self, pattern: str, batch: int = 1000) -> int:
        """Remove keys matching a glob under the cache prefix, walking with SCAN (never KEYS)."""
        match = pattern if pattern.startswith(PREFIX) else PREFIX + pattern

        def sweep() -> int:
            removed = 0
            chunk: list[bytes] = []
            for key in self.redis.scan_iter(match=match, count=batch):
                chunk.append(key)
                if len(chunk) >= batch:
                    removed += self.redis.unlink(*chunk)
                    chunk.clear()
            if chunk:
                removed += self.redis.unlink(*chunk)
            return removed

        return int(self._call(sweep, default=0) or 0)

    def close(self) -> None:
        self.redis.close()


shared_cache = PerProcess(Cache)  # shared_cache(url): the process's cache (one breaker per process and URL)
