"""What a newly loaded release invalidates: the entries tagged with the release it replaced."""

from __future__ import annotations

import logging

from cache.tags import release_tag

log = logging.getLogger("icdq.cache")


def release_loaded(result, cache_url: str | None = None) -> int:
    """Drop the cached entries of the release that was active before `result` (a LoadResult).

    Entries of other releases (and keys of other kinds, such as rate limits) are untouched.
    Returns how many keys were removed; 0 when nothing was replaced or the cache is down.
    """
    old = getattr(result, "replaced_active", None)
    if old is None:
        return 0
    from cache.client import shared_cache

    removed = shared_cache(cache_url or _configured_cache_url()).invalidate_tags([release_tag(old)])
    log.info("release %s replaced release %s: %d cached entries dropped", result.name, old, removed)
    return removed


def _configured_cache_url() -> str:
    from ops import config
    from ops.embedded import EmbeddedServices

    return EmbeddedServices(config.load()).endpoints().cache_url
