"""Cache writes off the request path: a request queues what it computed and answers; one thread
per process writes the queue to Redis, many values per pipeline round trip, and announces the keys
it wrote (cache.announce) so other processes know to ask for them.

A queued write that never lands (Redis down, process killed) costs a recomputation, nothing else:
the cache is never the source of truth.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable
from typing import Any

from cache.announce import CHANNEL
from cache.client import Cache
from ops.background import BatchFlusher

log = logging.getLogger("icdq.cache")

MAX_PENDING = 20_000  # beyond this (Redis slower than the requests) the oldest writes are dropped
BATCH = 500
# After a wake-up, let writes gather this long (or until BATCH are queued) to share one pipeline.
# Another process may recompute a query meanwhile; that is all a longer wait costs.
GATHER_SECONDS = 0.1  # ~50 keys a pipeline at 500 searches/s: ~40 us a key (~240 us one by one)


class WriteBehind(BatchFlusher):
    name = "cache-writer"
    gather = GATHER_SECONDS
    batch = BATCH

    def __init__(self, cache: Cache) -> None:
        super().__init__()
        self.cache = cache
        self.owner: Cache | None = None  # the requests' cache this writer serves
        self.pending: deque[tuple[str, Any, int, tuple[str, ...]]] = deque(maxlen=MAX_PENDING)

    def set(self, key: str, value: Any, ttl: int, tags: Iterable[str] = ()) -> None:
        self.pending.append((key, value, ttl, tuple(tags)))
        self.queued(len(self.pending))

    def failed(self, err: Exception) -> None:
        log.warning("cache writes dropped (%s)", type(err).__name__)

    def flush(self) -> int:
        """Write up to BATCH queued values in one pipeline (the cache's breaker decides whether
        Redis is tried at all); returns how many were taken from the queue."""
        by_ttl: dict[int, tuple[dict[str, Any], dict[str, tuple[str, ...]]]] = {}
        taken = 0
        while self.pending and taken < BATCH:
            key, value, ttl, tags = self.pending.popleft()
            items, key_tags = by_ttl.setdefault(ttl, ({}, {}))
            items[key], key_tags[key] = value, tags
            taken += 1
        for ttl, (items, key_tags) in by_ttl.items():
            self.cache.set_many(items, ttl, key_tags=key_tags, announce=CHANNEL)
        return taken


_writers: dict[int, WriteBehind] = {}
_lock = threading.Lock()


def write_behind(cache: Cache) -> WriteBehind:
    """The process's writer for this cache.

    It writes through a Cache of its own (same Redis, its own breaker and connections): pybreaker
    holds its lock for the whole of a guarded call, so a pipeline of 500 writes through the
    requests' breaker made every request's cache read wait for it (measured: ~0.2 ms a search).
    """
    with _lock:
        writer = _writers.get(id(cache))
        if writer is None or writer.owner is not cache:
            own = Cache(cache.url, fail_max=cache.breaker.fail_max, reset_timeout=cache.breaker.reset_timeout)
            writer = _writers[id(cache)] = WriteBehind(own)
            writer.owner = cache
    return writer
