"""The one place configuration is read: the process environment, with embedded defaults.

Nothing here opens a connection; `load()` is called by entry points, never at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    database_url: str | None  # None: the embedded PostgreSQL under state_dir
    redis_url: str | None  # None: the embedded Redis under state_dir (broker)
    cache_url: str | None  # None: REDIS_URL's server, database 1 (or the embedded cache Redis)
    state_dir: Path
    api_url: str
    port: int
    flower_port: int
    flower_basic_auth: str | None
    api_keys_file: Path | None
    log_level: str
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def embedded_postgres(self) -> bool:
        return self.database_url is None

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None


def load(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    keys_file = env.get("ICDQ_API_KEYS_FILE")
    return Settings(
        database_url=env.get("DATABASE_URL") or None,
        redis_url=env.get("REDIS_URL") or None,
        cache_url=env.get("ICDQ_CACHE_URL") or None,
        state_dir=Path(env.get("ICDQ_STATE_DIR") or "./var").resolve(),
        api_url=(env.get("ICDQ_API_URL") or "http://127.0.0.1:8000").rstrip("/"),
        port=int(env.get("PORT") or 8000),
        flower_port=int(env.get("FLOWER_PORT") or 5555),
        flower_basic_auth=env.get("FLOWER_BASIC_AUTH") or None,
        api_keys_file=Path(keys_file) if keys_file else None,
        log_level=(env.get("ICDQ_LOG_LEVEL") or "INFO").upper(),
    )
