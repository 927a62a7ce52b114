"""Keep the cache Redis within its memory budget: prune tag sets of keys that have expired, and
when memory is nearly full drop the search results (the cheapest entries to recompute)."""

from __future__ import annotations

from cache.client import shared_cache
from cache.tags import PREFIX, kind_tag, tag_key

NEARLY_FULL = 0.9


def clean(cache_url: str) -> dict:
    cache = shared_cache(cache_url)

    def sweep() -> dict:
        redis = cache.redis
        pruned = 0
        for tag in redis.scan_iter(match=tag_key("*"), count=500):
            members = list(redis.sscan_iter(tag, count=1000))
            for start in range(0, len(members), 1000):
                chunk = members[start:start + 1000]
                pipe = redis.pipeline(transaction=False)
                for member in chunk:
                    pipe.exists(member)
                dead = [m for m, alive in zip(chunk, pipe.execute(), strict=True) if not alive]
                if dead:
                    pruned += redis.srem(tag, *dead)
        memory = redis.info("memory")
        used, limit = int(memory.get("used_memory", 0)), int(memory.get("maxmemory", 0))
        dropped = cache.invalidate_tags([kind_tag("search")]) if limit and used > NEARLY_FULL * limit else 0
        return {"pruned_tag_members": pruned, "used_memory": used, "maxmemory": limit,
                "dropped_search_entries": dropped, "prefix": PREFIX}

    return cache._call(sweep, default={"state": "degraded"})
