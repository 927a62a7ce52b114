"""Celery tasks for jobs: ingest (split the stored upload into chunks), code_chunk, reap_expired.

Arguments are ids only, so Flower and the logs never show claim content. Every task is safe to run
twice: PostgreSQL decides what is left to do, and a chunk's results are written exactly once.
"""

from __future__ import annotations

import logging
import traceback
import uuid

import orjson
import psycopg  # noqa: F401 - fully imported before the pool forks (a fork mid-import deadlocks)
from celery import shared_task
from flask import current_app
from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError

from cache.client import shared_cache
from coding.batches import code_batch
from coding.claim_csv import chunk_records, decode_lines, layout_for, split_records
from coding.claim_lookup import resolve_facts, suggest_codes
from coding.claims import code_records
from coding.lookup import gc_paused
from db import jobs as store
from db.engine import transaction

log = logging.getLogger("icdq.jobs")
CHUNK_LINES = 10_000  # see bench/claims.py: larger chunks resolve fewer repeated codes per line
MAX_ATTEMPTS = 5  # a chunk that kept killing its worker fails the job instead of looping
TRANSIENT = (OperationalError, InterfaceError)  # connection lost, deadlock, serialization failure
RETRY = {"autoretry_for": TRANSIENT, "retry_backoff": 1, "retry_backoff_max": 60, "max_retries": 8,
         "retry_jitter": True}


def _db_url() -> str:
    return current_app.config["DATABASE_URL"]


def _log_failure(what: str, err: BaseException) -> None:
    """The exception's type and code locations only: its message may quote claim content."""
    frames = "".join(traceback.format_tb(err.__traceback__))
    log.error("%s failed: %s\n%s", what, type(err).__name__, frames)


def _send(task, *args: object) -> None:
    with task.app.producer_or_acquire() as producer:
        task.apply_async(args, producer=producer)


def _send_chunks(job_id: str, chunk_numbers: list[int]) -> None:
    with code_chunk.app.producer_or_acquire() as producer:
        for n in chunk_numbers:
            code_chunk.apply_async((job_id, n), producer=producer)


def split_job(conn, job_id: uuid.UUID) -> list[int]:
    """Split a queued job's upload into chunk rows; the chunks left to code (none if not queued)."""
    job = store.lock_for_ingest(conn, job_id)
    if job is None:
        return store.pending_chunks(conn, job_id) if store.find_job(conn, job_id).state == "running" else []
    pieces = store.read_upload(conn, job_id)
    if job.kind == "claims":
        records = split_records(decode_lines(pieces))
        next(records, None)  # the header, checked when the file was posted
    else:
        records = iter(orjson.loads(b"".join(pieces))["items"])
    chunks, lines = store.insert_chunks(conn, job_id, job.lease_seconds, chunk_records(records, CHUNK_LINES))
    store.mark_running(conn, job_id, chunks, lines)
    conn.execute(text("DELETE FROM job_uploads WHERE job_id = :id"), {"id": job_id})
    return list(range(chunks))


@shared_task(name="jobs.claims.ingest", **RETRY)
def ingest(job_id: str) -> int:
    try:
        with transaction(_db_url()) as conn:
            chunks = split_job(conn, uuid.UUID(job_id))
    except TRANSIENT:
        raise
    except Exception as err:  # a bug: fail the job once rather than re-sending it forever
        _log_failure(f"ingest of job {job_id}", err)
        with transaction(_db_url()) as conn:
            store.fail_job(conn, uuid.UUID(job_id), "internal error while reading the file; the job was stopped")
        return 0
    _send_chunks(job_id, chunks)  # only after the commit: a worker must find the chunk rows
    return len(chunks)


def run_chunk(conn, job_id: uuid.UUID, chunk_no: int, chunk) -> bool | None:
    """Code a claimed chunk and write its results in the caller's transaction (see finish_chunk)."""
    conn.execute(text("SET LOCAL jit = off"))  # short set-based queries; JIT only adds latency
    conn.execute(text("SET LOCAL enable_hashjoin = off"))  # index probes beat scanning the code table

    cache = shared_cache(current_app.config["CACHE_URL"])

    def resolve(codes):
        return resolve_facts(conn, cache, codes)

    def suggest(texts):
        return suggest_codes(conn, cache, texts)

    with gc_paused():  # a chunk builds ~10^5 acyclic objects; collections would walk them all
        if chunk.kind == "claims":
            layout = layout_for(chunk.header)
            rows, counts = code_records(layout, chunk.first_line, chunk.records, resolve, suggest)
        else:
            rows, counts = code_batch(chunk.kind, chunk.first_line, chunk.records, resolve, suggest)
        return store.finish_chunk(conn, job_id, chunk_no, chunk.job_month, rows, counts)


@shared_task(name="jobs.claims.code_chunk", **RETRY)
def code_chunk(job_id: str, chunk_no: int) -> bool | None:
    job = uuid.UUID(job_id)
    with transaction(_db_url()) as conn:
        chunk = store.claim_chunk(conn, job, chunk_no)
    if chunk is None:
        return None  # done already, or the job was cancelled or failed
    try:
        if chunk.attempts > MAX_ATTEMPTS:
            raise RuntimeError("too many attempts")
        with transaction(_db_url()) as conn:
            return run_chunk(conn, job, chunk_no, chunk)
    except TRANSIENT:
        raise
    except Exception as err:  # a bug or a chunk that kills its worker; bad input is an edit on its line
        _log_failure(f"chunk {chunk_no} of job {job_id}", err)
        with transaction(_db_url()) as conn:
            store.fail_job(conn, job, f"internal error while coding lines {chunk.first_line}-"
                                      f"{chunk.first_line + chunk.lines - 1}; the job was stopped")
        return None


@shared_task(name="jobs.claims.reap_expired")
def reap_expired() -> dict:
    """Beat: re-send work whose lease expired (worker killed, broker messages lost)."""
    with transaction(_db_url()) as conn:
        jobs, chunks = store.expired_work(conn)
    for job_id in jobs:
        _send(ingest, str(job_id))
    with code_chunk.app.producer_or_acquire() as producer:
        for job_id, chunk_no in chunks:
            code_chunk.apply_async((str(job_id), chunk_no), producer=producer)
    if jobs or chunks:
        log.warning("re-sent %d expired ingests and %d expired chunks", len(jobs), len(chunks))
    return {"ingests": len(jobs), "chunks": len(chunks)}
