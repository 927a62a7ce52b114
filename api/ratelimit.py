"""The moving-window rate limit in one Redis round trip a request instead of two.

flask-limiter takes a hit (limits' acquire script), then, for the RateLimit-* headers, asks for the
window again (a second script): two round trips, most of what limiting costs a cached search. Here
one script does both and hands the window to the header lookup that follows in the same thread.
Registered with limits as the strategy "moving-window-one-trip"; the keys and the list kept under
them are limits' own, so either strategy reads what the other wrote.
"""

from __future__ import annotations

import threading
import time

from limits.storage import RedisStorage
from limits.strategies import STRATEGIES, MovingWindowRateLimiter
from limits.util import WindowStats

NAME = "moving-window-one-trip"
FRESH_SECONDS = 1.0  # a window handed over is used by the same request, or not at all

# limits' acquire_moving_window.lua, then its moving_window.lua's count, in one script.
_ACQUIRE_AND_COUNT = """
local timestamp = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local expiry = tonumber(ARGV[3])
local amount = tonumber(ARGV[4])
local acquired = 0
if amount <= limit then
    local entry = redis.call('lindex', KEYS[1], limit - amount)
    if not (entry and tonumber(entry) >= timestamp - expiry) then
        for i = 1, amount do
            redis.call('lpush', KEYS[1], timestamp)
        end
        redis.call('ltrim', KEYS[1], 0, limit - 1)
        redis.call('expire', KEYS[1], expiry)
        acquired = 1
    end
end
local low, high, found = 0, redis.call('llen', KEYS[1]) - 1, -1
while low <= high do
    local mid = math.floor((low + high) / 2)
    local value = tonumber(redis.call('lindex', KEYS[1], mid))
    if value and value >= timestamp - expiry then
        found = mid
        low = mid + 1
    else
        high = mid - 1
    end
end
if found < 0 then
    return {acquired, tostring(timestamp), 0}
end
return {acquired, tostring(redis.call('lindex', KEYS[1], found)), found + 1}
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
