"""API keys (`X-API-Key`, stored as SHA-256 hashes) and per-key rate limits on Redis.

Keys come from the `api_keys` table and from ICDQ_API_KEYS_FILE (lines `name:key` or
`name:tier:key`). While neither holds a key the API is open (a fresh `make demo` needs no set-up)
and every caller is the one owner "anonymous"; once a key exists, every /v1 call needs one.
Every answer carries RateLimit-Limit / RateLimit-Remaining; a refused one is 429 with Retry-After.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Flask, current_app, g, request
from sqlalchemy import text
from sqlalchemy.engine import Connection

from api import ratelimit
from api.context import db
from api.errors import ApiError

bp = Blueprint("auth", __name__)
TIERS = {"open": "1200/minute", "free": "60/minute", "standard": "600/minute", "bulk": "6000/minute"}
_CACHE_SECONDS = 10.0  # how long a process trusts what it read about keys (revocation delay)
_cache: dict[str, tuple[float, object]] = {}


@dataclass(frozen=True)
class Caller:
    owner: str  # "anonymous" or the key's SHA-256 hex
    tier: str
    valid: bool  # False: a key was sent but is unknown or revoked


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(conn: Connection, name: str, tier: str = "standard") -> str:
    """A new key, returned once; only its hash is stored."""
    if tier not in TIERS or tier == "open":
        raise ValueError(f"tier must be one of {', '.join(t for t in TIERS if t != 'open')}")
    key = "icdq_" + secrets.token_urlsafe(32)
    conn.execute(text("INSERT INTO api_keys (name, tier, key_hash) VALUES (:n, :t, :h)"),
                 {"n": name, "t": tier, "h": hash_key(key)})
    return key


def _file_keys(path: Path | None) -> dict[str, str]:
    """hash -> tier from ICDQ_API_KEYS_FILE."""
    if path is None or not path.exists():
        return {}
    keys = {}
    for line in path.read_text().splitlines():
        parts = line.strip().split(":")
        if len(parts) >= 2 and not line.lstrip().startswith("#"):
            tier = parts[1] if len(parts) == 3 and parts[1] in TIERS else "standard"
            keys[hash_key(parts[-1].strip())] = tier
    return keys


def _cached(name: str, load):
    hit = _cache.get(name)
    if hit is None or time.monotonic() - hit[0] > _CACHE_SECONDS:
        hit = (time.monotonic(), load())
        _cache[name] = hit
    return hit[1]


def _keys_exist() -> bool:
    settings = current_app.config["SETTINGS"]
    return _cached("exist", lambda: bool(_file_keys(settings.api_keys_file)) or bool(
        db().execute(text("SELECT EXISTS (SELECT 1 FROM api_keys WHERE revoked_at IS NULL)")).scalar()))


def _tier_of(key_hash: str) -> str | None:
    def load():
        if tier := _file_keys(current_app.config["SETTINGS"].api_keys_file).get(key_hash):
            return tier
        return db().execute(text("SELECT tier FROM api_keys WHERE key_hash = :h AND revoked_at IS NULL"),
                            {"h": key_hash}).scalar()

    return _cached("key:" + key_hash, load)


def caller() -> Caller:
    if "caller" not in g:
        key = request.headers.get("X-API-Key", "").strip()
        if key:
            tier = _tier_of(hash_key(key))
            g.caller = Caller(hash_key(key), tier or "free", tier is not None)
        else:
            g.caller = Caller("anonymous", "open" if not _keys_exist() else "free", True)
    return g.caller


def _limit_key() -> str:
    who = caller()
    return who.owner if who.owner != "anonymous" and who.valid else "ip:" + (request.remote_addr or "127.0.0.1")


def limiter_of(app: Flask) -> ratelimit.RateLimits:
    return app.extensions["icdq_limiter"]


def _authenticate() -> None:
    if not request.path.startswith("/v1/"):
        return
    who = caller()
    if not who.valid:
        raise ApiError(401, "INVALID_API_KEY", "the X-API-Key is unknown or revoked")
    if who.owner == "anonymous" and who.tier != "open":
        raise ApiError(401, "API_KEY_REQUIRED", "send your API key in the X-API-Key header")


@bp.record_once
def _install(state) -> None:
    app: Flask = state.app
    cache_url = app.config["CACHE_URL"]  # limits spells a unix socket redis+unix://
    app.config.setdefault("RATELIMIT_STORAGE_URI", "redis+" + cache_url if cache_url.startswith("unix:") else cache_url)
    app.config.setdefault("RATELIMIT_STRATEGY", ratelimit.NAME)  # limits' moving window, one round trip
    # One an app (a module-level one would follow the last app's storage). Its check runs before the
    # key check, so refused and unauthenticated answers carry the headers too.
    app.extensions["icdq_limiter"] = ratelimit.RateLimits(app, key=_limit_key, limit=lambda: TIERS[caller().tier])
    app.before_request(_authenticate)
