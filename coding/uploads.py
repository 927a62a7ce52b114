"""Accepting a job: check the claim file's header, stream it into PostgreSQL, honour Idempotency-Key.

Runs in the caller's transaction; the caller commits and only then enqueues the ingest task.
Raises HeaderError (nothing stored, no job) for a file that cannot be coded at all.
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import orjson
from sqlalchemy.engine import Connection

from coding.claim_csv import HeaderError, header_names, layout_for
from db import jobs as store

PIECE_BYTES = 1 << 20
HEADER_LIMIT = 64 * 1024


@dataclass
class Accepted:
    answer: dict  # the job envelope as first answered
    created: bool  # False: a replay of an earlier request with the same Idempotency-Key


class IdempotencyConflict(Exception):
    pass


def job_envelope(job) -> dict:
    return {
        "id": str(job.id), "kind": job.kind, "state": job.state,
        "progress": {"done": job.done, "total": job.total},
        "counts": job.counts or {"status": {}, "edits": {}},
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "error": job.error,
    }


def read_pieces(read, size: int = PIECE_BYTES) -> Iterator[bytes]:
    while piece := read(size):
        yield piece


class _CheckedStream:
    """Pieces passed through while hashing them and checking they are UTF-8 text with data lines."""

    def __init__(self, first: bytes, rest: Iterator[bytes], kind: str) -> None:
        self.first, self.rest = first, rest
        self.digest = hashlib.sha256(kind.encode() + b"\0")
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.size = 0
        self.has_data = False

    def __iter__(self) -> Iterator[bytes]:
        header_end = self.first.find(b"\n")
        self.has_data = self.has_data or header_end >= 0 and bool(self.first[header_end + 1:].strip())
        for piece in self._all():
            self.digest.update(piece)
            self.size += len(piece)
            try:
                self.decoder.decode(piece)
            except UnicodeDecodeError:
                raise HeaderError("NOT_UTF8", f"the file is not UTF-8 text (bad byte near offset "
                                              f"{self.size - len(piece)})") from None
            if b"\x00" in piece:
                raise HeaderError("NOT_CSV", "the file is not CSV text (it contains NUL bytes)")
            yield piece
        try:
            self.decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise HeaderError("NOT_UTF8", "the file is not UTF-8 text (it ends inside a character)") from None
        if not self.has_data:
            raise HeaderError("NO_DATA_LINES", "the file has a header but no data lines")

    def _all(self) -> Iterator[bytes]:
        yield self.first
        for piece in self.rest:
            if not self.has_data and piece.strip():
                self.has_data = True
            yield piece


def _head(pieces: Iterator[bytes]) -> bytes:
    """The first piece, extended until it holds the whole header line."""
    head = b""
    for piece in pieces:
        head += piece
        if b"\n" in head or len(head) > HEADER_LIMIT:
            break
    return head


def header_of(head: bytes) -> list[str]:
    if not head.strip():
        raise HeaderError("EMPTY_FILE", "the file is empty")
    line = head.split(b"\n", 1)[0]
    if len(line) > HEADER_LIMIT:
        raise HeaderError("NOT_CSV", "the first line is too long to be a CSV header")
    try:
        text = line.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError:
        raise HeaderError("NOT_UTF8", "the file is not UTF-8 text") from None
    names = header_names(text)
    layout_for(names)  # raises HeaderError when the columns cannot be coded
    return names


def accept_claims(conn: Connection, owner: str, idempotency_key: str | None,
                  pieces: Iterable[bytes]) -> Accepted:
    pieces = iter(pieces)
    head = _head(pieces)
    header = header_of(head)
    stream = _CheckedStream(head, pieces, "claims")
    return _accept(conn, owner, "claims", idempotency_key, stream, header)


def accept_batch(conn: Connection, owner: str, kind: str, idempotency_key: str | None,
                 items: list[str]) -> Accepted:
    body = orjson.dumps({"items": items})
    stream = _CheckedStream(body, iter(()), kind)
    stream.has_data = True
    return _accept(conn, owner, kind, idempotency_key, stream, [])


def _accept(conn: Connection, owner: str, kind: str, key: str | None, stream: _CheckedStream,
            header: list[str]) -> Accepted:
    job_id = store.insert_job(conn, owner, kind, key)
    if job_id is None:  # the key was used before: same request -> replay, different -> conflict
        for _ in stream:
            pass
        earlier = store.find_by_idempotency_key(conn, owner, key)
        if earlier.request_hash != stream.digest.hexdigest():
            raise IdempotencyConflict()
        return Accepted(earlier.first_answer, created=False)
    store.store_upload(conn, job_id, stream)
    job = store.find_job(conn, job_id)
    answer = job_envelope(job)
    store.seal_job(conn, job_id, stream.digest.hexdigest(), header, stream.size, answer)
    return Accepted(answer, created=True)
