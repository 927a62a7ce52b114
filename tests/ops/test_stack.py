"""`icdq up` end to end: real gunicorn, celery worker, beat and flower processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import psutil
import pytest

from ops.embedded import EmbeddedRedis, _free_port
from tests.waiting import eventually


def _wait(predicate, timeout: float, what: str):
    assert eventually(predicate, timeout, interval=0.3), f"timed out waiting for {what}"


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.TransportError:
        return None


@pytest.fixture
def stack_env(endpoints, tmp_path):
    """Our test database, but Redis embedded in a fresh state dir: `up` must start and stop it."""
    port, flower_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "ICDQ_CACHE_URL")}
    env.update(ICDQ_STATE_DIR=str(tmp_path / "state"), PORT=str(port), FLOWER_PORT=str(flower_port),
               FLOWER_BASIC_AUTH="ops:s3cret", DATABASE_URL=endpoints.database_url)
    return env


def test_up_runs_the_stack_and_ctrl_c_leaves_nothing_behind(stack_env, tmp_path):
    api = f"http://127.0.0.1:{stack_env['PORT']}"
    up = subprocess.Popen([sys.executable, "-m", "ops.cli", "up"], env=stack_env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        _wait(lambda: _status(f"{api}/readyz") == 200, 90, "/readyz 200")
        children = psutil.Process(up.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in children)
        for part in ("gunicorn", "worker", "beat", "flower"):
            assert part in names
        broker = EmbeddedRedis(tmp_path / "state", "broker")
        assert broker.pid()

        second = subprocess.run([sys.executable, "-m", "ops.cli", "up"], env=stack_env, capture_output=True,
                                text=True, timeout=60)
        assert second.returncode != 0
        assert "already running on state dir" in second.stderr

        flower = f"http://127.0.0.1:{stack_env['FLOWER_PORT']}/"
        _wait(lambda: _status(flower) == 401, 60, "flower asking for auth")
        assert httpx.get(flower, auth=("ops", "s3cret"), timeout=10).status_code == 200

        # Redis down: not ready; Redis back: ready again once the worker has reconnected.
        broker.stop()
        _wait(lambda: _status(f"{api}/readyz") == 503, 30, "/readyz 503 with the broker down")
        assert httpx.get(f"{api}/readyz", timeout=10).json()["checks"]["redis"]["state"] == "down"
        broker.start()
        _wait(lambda: _status(f"{api}/readyz") == 200, 90, "/readyz 200 with the broker back")
    finally:
        up.send_signal(signal.SIGINT)
        output, _ = up.communicate(timeout=90)
    assert up.returncode == 0, output[-3000:]
    _wait(lambda: not [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE],
          20, "every stack process to exit")
    assert broker.pid() is None
    assert _status(f"{api}/healthz") is None


def test_flower_refuses_to_start_without_auth(stack_env):
    env = {k: v for k, v in stack_env.items() if k != "FLOWER_BASIC_AUTH"}
    result = subprocess.run([sys.executable, "-m", "ops.flower"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "refusing to start without authentication" in result.stderr
