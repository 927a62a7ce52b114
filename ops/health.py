"""Dependency checks for /readyz: each answers quickly or is reported down, never raises."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import text

from db.engine import get_engine

REQUIRED = ("database", "redis", "workers")  # the job call path; the cache only degrades


def _timed(check: Callable[[], dict | None]) -> dict:
    started = time.perf_counter()
    try:
        detail = check() or {}
        state = detail.pop("state", "up")
    except Exception as err:  # noqa: BLE001 - any failure means "down", reported by type only
        detail, state = {"error": type(err).__name__}, "down"
    return {"state": state, "ms": round((time.perf_counter() - started) * 1000, 1), **detail}


def _redis_ping(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    finally:
        client.close()


def _database(url: str) -> dict:
    with get_engine(url).connect() as conn:
        conn.execute(text("SET LOCAL statement_timeout = 2000"))
        releases = conn.execute(text("SELECT count(*) FROM releases")).scalar_one()
    return {"releases": releases} if releases else {"state": "down", "error": "no release loaded"}


def _workers(celery_app) -> dict:
    # limit=1: answer as soon as one worker replies instead of holding a web thread for the timeout
    replies = celery_app.control.ping(timeout=1.0, limit=1) or []
    return {"count": len(replies)} if replies else {"state": "down", "count": 0}


def _cache(url: str) -> dict | None:
    """Degraded when Redis does not answer or this process's cache breaker is not closed (searches
    and lookups are going to PostgreSQL meanwhile), even if Redis would answer a ping now."""
    from cache.client import shared_cache

    cache = shared_cache(url)
    answered = cache.ping()  # through the breaker: also the trial call that closes it once due
    breaker = cache.breaker_state
    if answered and breaker == "closed":
        return None
    return {"state": "degraded", "breaker": breaker, **({} if answered else {"error": "no answer"})}


def check_dependencies(cfg, celery_app) -> dict:
    checks = {
        "database": _timed(lambda: _database(cfg["DATABASE_URL"])),
        "redis": _timed(lambda: _redis_ping(cfg["REDIS_URL"])),
        "cache": _timed(lambda: _cache(cfg["CACHE_URL"])),
    }
    if checks["redis"]["state"] == "up":
        checks["workers"] = _timed(lambda: _workers(celery_app))
    else:
        checks["workers"] = {"state": "unknown", "error": "broker down"}
    if checks["cache"]["state"] != "up":
        checks["cache"]["state"] = "degraded"  # answers come from PostgreSQL meanwhile
    ready = all(checks[name]["state"] == "up" for name in REQUIRED)
    return {"ready": ready, "checks": checks}
