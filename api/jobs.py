"""The job API: store, enqueue (after the commit), answer. The work happens in jobs/claims.py."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from werkzeug.exceptions import BadRequest

from api.auth import caller
from api.context import db
from api.errors import ApiError
from coding.batches import BatchError, batch_items
from coding.claim_csv import HeaderError
from coding.result_csv import csv_lines
from coding.uploads import IdempotencyConflict, accept_batch, accept_claims, job_envelope, read_pieces
from db import jobs as store
from db.engine import get_engine

bp = Blueprint("jobs", __name__, url_prefix="/v1/jobs")
PAGE_LIMIT = 10_000
STATUS_CODES = {"EMPTY_FILE": 400, "MISSING_FILE": 400}


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 255:
        raise ApiError(400, "INVALID_IDEMPOTENCY_KEY", "Idempotency-Key must be 1 to 255 characters")
    return key


def _accept(owner: str, key: str | None):
    if request.mimetype == "multipart/form-data":
        if request.form.get("kind", "claims") != "claims":
            raise ApiError(422, "INVALID_KIND", "a file upload is kind=claims")
        upload = request.files.get("file")
        if upload is None:
            raise ApiError(400, "MISSING_FILE", "send the claim file as the multipart field 'file'")
        return accept_claims(db(), owner, key, read_pieces(upload.stream.read))
    if request.mimetype != "application/json":
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "send multipart/form-data (file) or JSON")
    try:
        body = request.get_json()
    except BadRequest:
        raise ApiError(400, "INVALID_JSON", "the body is not valid JSON") from None
    kind = body.get("kind") if isinstance(body, dict) else None
    if kind not in ("lookup", "analyze"):
        raise ApiError(422, "INVALID_KIND", "JSON jobs are kind 'lookup' or 'analyze'")
    return accept_batch(db(), owner, kind, key, batch_items(kind, body))


@bp.post("")
def create_job():
    try:
        accepted = _accept(caller().owner, _idempotency_key())
        db().commit()
    except (HeaderError, BatchError) as err:  # nothing stored: the request's transaction rolls back
        raise ApiError(STATUS_CODES.get(err.code, 422), err.code, str(err)) from None
    except IdempotencyConflict:
        raise ApiError(409, "IDEMPOTENCY_KEY_REUSED",
                       "this Idempotency-Key was used with a different request") from None
    if accepted.created:  # the job row is committed: a worker will find it
        current_app.extensions["celery"].send_task("jobs.claims.ingest", args=[accepted.answer["id"]])
    response = jsonify(accepted.answer)
    response.status_code = 202
    response.headers.update({"Location": url_for("jobs.get_job", job_id=accepted.answer["id"]),
                             "Retry-After": "1"})
    if not accepted.created:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _job(job_id: str):
    job = store.find_job(db(), job_id, caller().owner)
    if job is None:
        raise ApiError(404, "JOB_NOT_FOUND", "no such job")
    return job


@bp.get("/<job_id>")
def get_job(job_id: str):
    job = _job(job_id)
    envelope = job_envelope(job)
    if job.state != "succeeded":  # chunks running when a job is cancelled may still land
        envelope["counts"] = store.job_counts(db(), job.id)
    response = jsonify(envelope)
    if job.state in ("queued", "running"):
        response.headers["Retry-After"] = "1"
    return response


@bp.delete("/<job_id>")
def cancel_job(job_id: str):
    job = _job(job_id)
    too_late = store.cancel_job(db(), job.id)
    db().commit()
    if too_late:
        raise ApiError(409, "JOB_FINISHED", f"the job is already {too_late}; nothing to cancel")
    return jsonify(job_envelope(store.find_job(db(), job.id)))


def _int_arg(name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError(400, "INVALID_PARAMETER", f"{name} must be a whole number from {low} to {high}")
    return int(raw)


@bp.get("/<job_id>/results")
def job_results(job_id: str):
    job = _job(job_id)
    fmt = request.args.get("format", "ndjson")
    if fmt not in ("ndjson", "csv"):
        raise ApiError(400, "INVALID_PARAMETER", "format must be ndjson or csv")
    after = _int_arg("cursor", 0, 0, 2**31 - 1)
    limit = _int_arg("limit", None, 1, PAGE_LIMIT)
    if limit is None:  # the whole set, streamed on a connection of its own
        body = _stream(job, after)
        link = None
    else:
        page = [tuple(row) for row in store.results(db(), job, after, limit)]
        body = iter([[record for _, record in page]])
        link = (url_for("jobs.job_results", job_id=job_id, format=fmt, cursor=page[-1][0], limit=limit)
                if len(page) == limit else None)
    response = Response(_encode(body, fmt), mimetype="text/csv" if fmt == "csv" else "application/x-ndjson")
    if link:
        response.headers["Link"] = f'<{link}>; rel="next"'
    return response


def _stream(job, after: int):
    url = current_app.config["DATABASE_URL"]

    def batches():
        with get_engine(url).connect() as conn:
            batch = []
            for _, record in store.results(conn, job, after):
                batch.append(record)
                if len(batch) == 2000:
                    yield batch
                    batch = []
            yield batch

    return batches()


def _encode(batches, fmt: str):
    if fmt == "ndjson":
        for batch in batches:
            if batch:
                yield "\n".join(batch) + "\n"
    else:
        yield from csv_lines(record for batch in batches for record in batch)
