"""Per-request resources: one database connection, the Redis cache, timing and request id."""

from __future__ import annotations

import random
import time

from flask import Flask, current_app, g, request
from sqlalchemy.engine import Connection

from db.engine import get_engine


def db() -> Connection:
    """The request's connection, opened on first use and closed at teardown."""
    if "db" not in g:
        g.db = get_engine(current_app.config["DATABASE_URL"]).connect()
    return g.db


def register(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        # An id to correlate logs, not a secret: uuid4's os.urandom cost 30-140 us a request here.
        g.request_id = request.headers.get("X-Request-Id", "")[:64] or f"{random.getrandbits(128):032x}"

    @app.after_request
    def _headers(response):
        elapsed = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        response.headers["Server-Timing"] = f"app;dur={elapsed:.2f}"
        response.headers["X-Request-Id"] = g.get("request_id", "")
        return response

    @app.teardown_request
    def _close(_exc) -> None:
        conn = g.pop("db", None)
        if conn is not None:
            conn.close()
