"""Crash safety with real worker processes: each fault with recovery on (the job succeeds, every line
in the results exactly once) and a control run with recovery off (the test sees the loss)."""

from __future__ import annotations

import os
import signal
import time

import orjson
import pytest
import redis
from sqlalchemy import text

from db import jobs as store
from tests.jobs.helpers import csv_text, submit

LINES = 300_000  # 30 chunks, ~5 s of coding: long enough to hit mid-job on two cores
pytestmark = pytest.mark.timeout(240)


def _post(client) -> str:
    rows = (f"F{i},I10,E11.9,K50.90" for i in range(LINES))
    posted = submit(client, csv_text("claim_id,dx1,dx2,dx3", *rows))
    assert posted.status_code == 202
    return posted.get_json()["id"]


def _wait_mid_job(client, job_id: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").get_json()
        if job["state"] == "running" and 0 < job["progress"]["done"] < LINES // 2:
            return
        time.sleep(0.05)
    raise AssertionError(f"job never observed mid-way: {job}")


def _finish(client, job_id: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").get_json()
        if job["state"] != "running":
            return job
        time.sleep(0.2)
    return job


def _lines(conn, job_id: str) -> tuple[int, int, int, int]:
    """(records, distinct line numbers, first, last) of the stored results, read from the records."""
    job = store.find_job(conn, job_id)
    lines = [orjson.loads(record)["line"] for _, record in store.results(conn, job)]
    return len(lines), len(set(lines)), min(lines, default=0), max(lines, default=0)


def _assert_exactly_once(client, conn, job_id: str, timeout: float = 120) -> None:
    job = _finish(client, job_id, timeout)
    assert job["state"] == "succeeded", job
    assert job["progress"] == {"done": LINES, "total": LINES}
    assert _lines(conn, job_id) == (LINES, LINES, 1, LINES)
    assert sum(job["counts"]["status"].values()) == LINES


def _assert_loss_seen(client, conn, job_id: str, window: float = 15) -> None:
    job = _finish(client, job_id, window)
    assert job["state"] == "running" and job["progress"]["done"] < LINES, job
    count, distinct, _, _ = _lines(conn, job_id)
    assert count == distinct < LINES  # lines are missing, none doubled


def _kill_pool_process_mid_chunk(worker, processes, conn, job_id: str) -> None:
    """SIGKILL one pool process at a moment the database shows every pool process inside a chunk:
    chunks now code in ~0.1 s, and a process caught between two of them loses nothing (the control
    run then saw no loss)."""
    children = processes.pool_children(worker)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        running = conn.execute(text("SELECT count(*) FROM job_chunks WHERE job_id = :id AND state = 'running'"),
                               {"id": job_id}).scalar()
        if running >= len(children):
            break
    os.kill(children[0].pid, signal.SIGKILL)


@pytest.mark.parametrize("recovery", [True, False], ids=["recovers", "control"])
def test_sigkill_of_a_pool_process_mid_job(e2e_client, processes, database_url, conn, recovery):
    worker = processes.worker("jobs.worker" if recovery else "tests.e2e.control_worker")
    if recovery:
        processes.beat()
    job_id = _post(e2e_client)
    _wait_mid_job(e2e_client, job_id)
    _kill_pool_process_mid_chunk(worker, processes, conn, job_id)
    if recovery:
        _assert_exactly_once(e2e_client, conn, job_id)
    else:
        _assert_loss_seen(e2e_client, conn, job_id)


@pytest.mark.parametrize("recovery", [True, False], ids=["recovers", "control"])
def test_sigkill_of_the_whole_worker_then_another_starts(e2e_client, processes, conn, recovery):
    worker = processes.worker(name="first")
    if recovery:
        processes.beat()
    processes.pool_children(worker)
    job_id = _post(e2e_client)
    _wait_mid_job(e2e_client, job_id)
    for child in processes.pool_children(worker):
        child.kill()
    worker.kill()
    worker.wait()
    processes.worker(name="second")
    if recovery:
        _assert_exactly_once(e2e_client, conn, job_id)
    else:
        _assert_loss_seen(e2e_client, conn, job_id)


@pytest.mark.parametrize("recovery", [True, False], ids=["recovers", "control"])
def test_broker_flushall_mid_job(e2e_client, processes, stack_env, conn, recovery):
    processes.worker()
    if recovery:
        processes.beat()
    job_id = _post(e2e_client)
    _wait_mid_job(e2e_client, job_id)
    redis.Redis.from_url(stack_env["REDIS_URL"]).flushall()  # this test's own broker, nothing shared
    if recovery:
        _assert_exactly_once(e2e_client, conn, job_id)
    else:
        _assert_loss_seen(e2e_client, conn, job_id)
