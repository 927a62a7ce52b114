"""Which cache keys exist in Redis, known without asking it: the write-behind announces the keys it
writes, with their values, on a pub/sub channel, in the same pipeline as the writes; each process
keeps the keys it has heard announced and hands the values to whoever asked for them (`on_value`:
the search keeps them in its in-process memo, so a query another process answered a moment ago is
answered here without a Redis round trip).

Why: a search this process has not answered costs ~0.45 ms in the in-process index, and asking
Redis first cost ~0.3 ms more on a loaded 2-core machine — for nothing, since most first-time
queries miss (measured with `make bench-search`). So a search asks Redis only for a key another
process announced. A lost announcement (a subscriber reconnecting, Redis restarted) costs a
recomputation, never a wrong answer; a key announced and since evicted or invalidated is a miss.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import redis

from cache.tags import PREFIX
from ops.background import PerProcess, ProcessThread

log = logging.getLogger("icdq.cache")

CHANNEL = PREFIX + "written"
MAX_KEYS = 100_000  # ~12 MB; beyond this the set starts afresh: forgetting costs recomputations only
RETRY_SECONDS = 1.0


class Announced(ProcessThread):
    """The keys announced on CHANNEL since this process started listening."""

    name = "cache-announced"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.keys: set[str] = set()
        self.listening = threading.Event()  # set while subscribed
        self.on_value: Callable[[str, Any], None] | None = None  # called in this thread, per value

    def __contains__(self, key: str) -> bool:
        self.ensure_started()
        return key in self.keys

    def _run(self) -> None:
        while True:
            try:
                self._listen()
            except redis.RedisError as err:
                log.debug("cache announcements interrupted (%s)", type(err).__name__)
            except Exception as err:  # noqa: BLE001 - the thread must outlive anything a message does
                log.warning("cache announcements: %s", type(err).__name__)
            self.listening.clear()
            time.sleep(RETRY_SECONDS)

    def _listen(self) -> None:
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1, health_check_interval=15)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(CHANNEL)
            self.listening.set()
            for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                if len(self.keys) > MAX_KEYS:
                    self.keys = set()
                self._heard(message["data"])
        finally:
            pubsub.close()
            client.close()

    def _heard(self, data: bytes) -> None:
        if data[:1] != b"[":  # keys alone, one a line (as an earlier version announced them)
            self.keys.update(data.decode().split("\n"))
            return
        pairs = orjson.loads(data)
        self.keys.update(key for key, _ in pairs)
        if self.on_value is not None:
            for key, value in pairs:
                try:
                    self.on_value(key, value)
                except Exception as err:  # noqa: BLE001 - a consumer's failure must not stop the listener
                    log.warning("cache announcement not taken (%s)", type(err).__name__)


announced = PerProcess(Announced)  # announced(cache_url): the process's announced keys for that cache
