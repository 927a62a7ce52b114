"""Engines and connections. One engine per process, created on first use, disposed after fork."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import Connection

_engines: dict[str, Engine] = {}


def sqlalchemy_url(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    raise ValueError("DATABASE_URL must be a postgresql:// URL")


def libpq_url(url: str) -> str:
    """The same server as a plain libpq URL (psql, psycopg.connect)."""
    return "postgresql://" + sqlalchemy_url(url)[len("postgresql+psycopg://"):]


def get_engine(url: str, pool_size: int = 5) -> Engine:
    engine = _engines.get(url)
    if engine is None:
        engine = create_engine(
            sqlalchemy_url(url), pool_size=pool_size, max_overflow=10, pool_pre_ping=True,
            pool_recycle=1800, connect_args={"application_name": f"icdq-{os.getpid()}"},
        )
        _engines[url] = engine
    return engine


def dispose_all() -> None:
    """After fork: drop the parent's pooled connections without closing them under the parent."""
    for engine in _engines.values():
        engine.dispose(close=False)
    _engines.clear()


@contextmanager
def transaction(url: str) -> Iterator[Connection]:
    with get_engine(url).begin() as conn:
        yield conn


os.register_at_fork(after_in_child=dispose_all)
