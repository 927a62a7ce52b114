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
from coding.claim_csv import chunk_records, data_batches, layout_for
from coding.claim_lookup import known_facts, suggest_codes
from coding.claims import code_records
from coding.lookup import gc_paused
from db import jobs as store
from db.engine import transaction

log = logging.getLogger("icdq.jobs")
# Lines per chunk, by measurement (bench/claims.py, 1,000,000 lines, 2 cores): each distinct code is
# resolved once per worker process whatever the chunk size, so size trades per-chunk overhead (claim,
# store, commit: ~0.02 s) against how soon the first chunk starts, how evenly the last ones spread
# over the processes, and a worker's memory (a chunk's records are ~7 MB of JSON while it is coded);
# 10,000 lines (~0.15 s of coding when warm) keeps all three small.
CHUNK_LINES = 10_000
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


def _send_chunks(job_id: str, chunk_numbers: list[int], producer=None) -> None:
    with code_chunk.app.producer_or_acquire(producer) as producer:
        for n in chunk_numbers:
            code_chunk.apply_async((job_id, n), producer=producer)


def job_records(pieces, kind: str):
    """The stored upload -> batches of its records (claim CSV records after the header, or a batch's
    items)."""
    if kind == "claims":
        return data_batches(pieces)  # the header was checked when the file was posted
    return iter([orjson.loads(b"".join(pieces))["items"]])


def _send_after_commit(job_id: str, chunk_no: int, producer) -> None:
    """Send a committed chunk; if the broker is away, the reaper sends it when its lease runs out."""
    try:
        _send_chunks(job_id, [chunk_no], producer)
    except Exception as err:  # noqa: BLE001 - any broker failure: the chunk row is the truth
        log.warning("chunk %s of job %s not sent (%s); the reaper will send it", chunk_no, job_id,
                    type(err).__name__)


def ingest_job(job_id: uuid.UUID) -> int:
    """Cut a job's upload into chunks, each committed and sent as soon as it is cut, so coding starts
    while the rest of the file is still being read. Returns the chunks sent.

    The upload is read in one transaction that holds the job's ingest lock (a second delivery of
    the message finds it taken and stops); chunk rows are committed on another connection. An
    ingest killed half way leaves the job running with chunks_total NULL: its lease runs out, the
    reaper sends the ingest again, and that run skips the chunks already stored.
    """
    sent = 0
    with transaction(_db_url()) as reader:
        if not store.ingest_lock(reader, job_id):
            return 0
        with transaction(_db_url()) as conn:
            job = store.begin_ingest(conn, job_id)
        if job is None:  # finished, cancelled, or already cut: re-send what is left (a lost message)
            job = store.find_job(reader, job_id)
            left = store.pending_chunks(reader, job_id) if job is not None and job.state == "running" else []
            _send_chunks(str(job_id), left)
            return len(left)
        chunks = lines = 0
        # One producer for the whole file: acquiring one per chunk made a pool process open a broker
        # connection per message (seen in a profile of the ingest; ~0.6 ms a send where measured).
        with code_chunk.app.producer_or_acquire() as producer:
            for chunk_no, first_line, records in chunk_records(
                    job_records(store.read_upload(reader, job_id), job.kind), CHUNK_LINES):
                with transaction(_db_url()) as conn:
                    if not store.add_chunk(conn, job_id, job.lease_seconds, chunk_no, first_line, records):
                        return sent  # cancelled or failed meanwhile
                _send_after_commit(str(job_id), chunk_no, producer)
                chunks, lines, sent = chunks + 1, lines + len(records), sent + 1
        with transaction(_db_url()) as conn:
            store.finish_ingest(conn, job_id, chunks, lines)
    return sent


@shared_task(name="jobs.claims.ingest", **RETRY)
def ingest(job_id: str) -> int:
    try:
        return ingest_job(uuid.UUID(job_id))
    except TRANSIENT:
        raise
    except Exception as err:  # a bug: fail the job once rather than re-sending it forever
        _log_failure(f"ingest of job {job_id}", err)
        with transaction(_db_url()) as conn:
            store.fail_job(conn, uuid.UUID(job_id), "internal error while reading the file; the job was stopped")
        return 0


def run_chunk(conn, job_id: uuid.UUID, chunk_no: int, chunk) -> bool | None:
    """Code a claimed chunk and write its results in the caller's transaction (see finish_chunk)."""
    conn.execute(text("SET LOCAL jit = off"))  # short set-based queries; JIT only adds latency

    cache = shared_cache(current_app.config["CACHE_URL"])

    def resolve(codes):
        return known_facts(conn, codes)

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
