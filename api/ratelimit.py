"""Per-caller rate limits: the `limits` library's moving window in Redis, one round trip a request.

The Flask side is these few lines rather than flask-limiter: its per-request bookkeeping (route and
blueprint limits, exemption scopes, decorated views; none of which icdq has) cost ~0.35 ms of a
cached search's ~1 ms in one process, and at 16 clients on two cores that queueing was what put the
cached p99 over 2 ms with limits on. What limits an answer is still the library's: its storages,
its strategies, its keys; only the hook that asks it and writes the headers is ours.

limits' moving window takes a hit (its acquire script), then, for the RateLimit-* headers, needs the
window again (a second script): two round trips. `OneTripMovingWindow` does both in one script and
hands the window to the header lookup that follows in the same thread. It is registered with limits
as the strategy "moving-window-one-trip"; the keys and the list kept under them are limits' own, so
either strategy reads what the other wrote.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from flask import Flask, g
from limits import RateLimitItem, parse
from limits.storage import RedisStorage, storage_from_string
from limits.strategies import STRATEGIES, MovingWindowRateLimiter
from limits.util import WindowStats

from api.errors import ApiError

log = logging.getLogger("icdq.api")
NAME = "moving-window-one-trip"
NAMESPACE = "LIMITER"  # the prefix flask-limiter gave the same keys
FRESH_SECONDS = 1.0  # a window handed over is used by the same request, or not at all

# limits' acquire_moving_window.lua, then its moving_window.lua's count, in one script. Entries older
# than the window count for nothing in either; dropping them from the old end first (each once) makes
# the acquire test the list's length and the count its length, O(1) a request where limits' count
# searches the list (~50 us a call inside Redis at 5,000 entries, against ~10 us, measured here).
_ACQUIRE_AND_COUNT = """
local timestamp = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local expiry = tonumber(ARGV[3])
local amount = tonumber(ARGV[4])
local cutoff = timestamp - expiry
while true do
    local oldest = redis.call('lindex', KEYS[1], -1)
    if not oldest or tonumber(oldest) >= cutoff then
        break
    end
    redis.call('rpop', KEYS[1])
end
local acquired = 0
if amount <= limit and redis.call('llen', KEYS[1]) + amount <= limit then
    for i = 1, amount do
        redis.call('lpush', KEYS[1], timestamp)
    end
    redis.call('expire', KEYS[1], expiry)
    acquired = 1
end
local count = redis.call('llen', KEYS[1])
if count == 0 then
    return {acquired, tostring(timestamp), 0}
end
return {acquired, tostring(redis.call('lindex', KEYS[1], -1)), count}
"""


class OneTripMovingWindow(MovingWindowRateLimiter):
    """limits' moving window; on Redis, `hit` also counts the window for `get_window_stats`."""

    def __init__(self, storage) -> None:
        super().__init__(storage)
        self._script = storage.get_connection().register_script(_ACQUIRE_AND_COUNT) \
            if isinstance(storage, RedisStorage) else None
        self._handed = threading.local()

    def hit(self, item, *identifiers: str, cost: int = 1) -> bool:
        if self._script is None:
            return super().hit(item, *identifiers, cost=cost)
        key = item.key_for(*identifiers)
        now = time.time()
        acquired, oldest, count = self._script([self.storage.prefixed_key(key)],
                                               [now, item.amount, item.get_expiry(), cost])
        self._handed.window = (key, now, WindowStats(float(oldest) + item.get_expiry(), item.amount - int(count)))
        return bool(acquired)

    def get_window_stats(self, item, *identifiers: str) -> WindowStats:
        handed = getattr(self._handed, "window", None)
        if handed is not None:
            self._handed.window = None
            key, when, stats = handed
            if key == item.key_for(*identifiers) and time.time() - when < FRESH_SECONDS:
                return stats
        return super().get_window_stats(item, *identifiers)


STRATEGIES.setdefault(NAME, OneTripMovingWindow)  # type: ignore[arg-type]


class RateLimits:
    """Every request of `app` counted under `key()` against the limit `limit()` names ("600/minute").

    Config: RATELIMIT_ENABLED (default on), RATELIMIT_STORAGE_URI (a limits storage URI),
    RATELIMIT_STRATEGY (a limits strategy name). Every answer carries RateLimit-Limit /
    RateLimit-Remaining / RateLimit-Reset; a refused one is 429 TOO_MANY_REQUESTS with Retry-After.
    Storage down: the request is answered unlimited (logged), never refused for it.
    """

    def __init__(self, app: Flask, key: Callable[[], str], limit: Callable[[], str]) -> None:
        self.enabled = bool(app.config.get("RATELIMIT_ENABLED", True))
        self.storage = storage_from_string(app.config["RATELIMIT_STORAGE_URI"])
        self.strategy = STRATEGIES[app.config["RATELIMIT_STRATEGY"]](self.storage)
        self._key, self._limit = key, limit
        self._items: dict[str, RateLimitItem] = {}
        if self.enabled:
            app.before_request(self.check)
            app.after_request(self.headers)

    def _item(self, spelled: str) -> RateLimitItem:
        item = self._items.get(spelled)
        if item is None:
            item = self._items[spelled] = parse(spelled)
        return item

    def check(self) -> None:
        item, key = self._item(self._limit()), self._key()
        try:
            acquired = self.strategy.hit(item, NAMESPACE, key)
            stats = self.strategy.get_window_stats(item, NAMESPACE, key)
        except Exception as err:  # noqa: BLE001 - the limit store down must not take the API with it
            log.warning("rate limit not applied: %s", type(err).__name__)
            return
        g.rate_limit = (item, stats)
        if not acquired:
            retry = max(1, math.ceil(stats.reset_time - time.time()))
            raise ApiError(429, "TOO_MANY_REQUESTS", f"rate limit exceeded ({item}); retry in {retry} s",
                           headers={"Retry-After": str(retry)})

    @staticmethod
    def headers(response):
        counted = g.get("rate_limit")
        if counted is not None:
            item, stats = counted
            response.headers["RateLimit-Limit"] = str(item.amount)
            response.headers["RateLimit-Remaining"] = str(max(0, stats.remaining))
            response.headers["RateLimit-Reset"] = str(int(stats.reset_time))
        return response
