"""A real stack for fault tests: its own broker Redis (safe to FLUSHALL), real `celery worker` and
`celery beat` processes, and an app posting through that broker. Chunk leases are 3 s here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def broker(tmp_path_factory, endpoints):
    from ops.embedded import EmbeddedRedis

    redis = EmbeddedRedis(tmp_path_factory.mktemp("broker"), "broker")
    redis.start()
    yield redis.url
    redis.stop()


@pytest.fixture(scope="module")
def short_leases(database_url):
    from db.engine import transaction

    with transaction(database_url) as conn:
        conn.execute(text("ALTER TABLE jobs ALTER COLUMN lease_seconds SET DEFAULT 3"))
    yield
    with transaction(database_url) as conn:
        conn.execute(text("ALTER TABLE jobs ALTER COLUMN lease_seconds SET DEFAULT 60"))


@pytest.fixture(scope="module")
def stack_env(broker, endpoints, tmp_path_factory, short_leases):
    return {**os.environ, "REDIS_URL": broker, "DATABASE_URL": endpoints.database_url,
            "ICDQ_CACHE_URL": endpoints.cache_url, "PYTHONUNBUFFERED": "1",
            "ICDQ_STATE_DIR": str(tmp_path_factory.mktemp("state"))}


@pytest.fixture(scope="module")
def e2e_client(stack_env):
    from api import create_app
    from ops import config

    app = create_app(config.load(stack_env))
    return app.test_client()


class Processes:
    """Worker and beat processes started by a test, all stopped at its end."""

    def __init__(self, env: dict, logs: Path) -> None:
        self.env, self.logs, self.started = env, logs, []

    def worker(self, module: str = "jobs.worker", name: str = "w") -> subprocess.Popen:
        return self._start(name, [sys.executable, "-m", "celery", "-A", module, "worker", "-Q",
                                  "claims,terms,maintenance", "-c", "2", "-P", "prefork", "-n", f"{name}@%h",
                                  "--loglevel", "INFO", "--without-gossip", "--without-mingle"])

    def beat(self) -> subprocess.Popen:
        return self._start("beat", [sys.executable, "-m", "celery", "-A", "jobs.worker", "beat",
                                    "--schedule", str(self.logs / "beat-schedule"), "--loglevel", "INFO"])

    def _start(self, name: str, command: list[str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "a")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.started.append(process)
        return process

    @staticmethod
    def pool_children(process: subprocess.Popen) -> list[psutil.Process]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            children = psutil.Process(process.pid).children()
            if len(children) >= 2:
                return children
            time.sleep(0.2)
        raise AssertionError("the worker started no pool processes")

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                children = psutil.Process(process.pid).children(recursive=True)
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                for child in children:
                    if child.is_running():
                        child.kill()


@pytest.fixture
def processes(stack_env, tmp_path):
    procs = Processes(stack_env, tmp_path)
    yield procs
    procs.stop_all()
