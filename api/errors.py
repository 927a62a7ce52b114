"""The one error envelope: `{"error": {"code": "SNAKE_CASE", "message": "..."}}` with a 4xx/5xx status."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger("icdq.api")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def envelope(status: int, code: str, message: str, headers: dict | None = None):
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(err: ApiError):
        return envelope(err.status, err.code, err.message, err.headers)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        code = (err.name or "error").upper().replace(" ", "_").replace("'", "")
        headers = dict(err.get_headers()) if err.code == 405 else {}
        headers.pop("Content-Type", None)
        return envelope(err.code or 500, code, err.description or err.name, headers)

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        # Logged by type only: the message may quote request content (claim data).
        log.error("unhandled %s", type(err).__name__, exc_info=app.debug)
        status, code = _dependency_status(err)
        return envelope(status, code, "the service could not answer; try again shortly")


def _dependency_status(err: Exception) -> tuple[int, str]:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from sqlalchemy.exc import DBAPIError

    if isinstance(err, DBAPIError) and err.connection_invalidated or isinstance(err, RedisConnectionError):
        return 503, "DEPENDENCY_UNAVAILABLE"
    if isinstance(err, DBAPIError) and type(err.orig).__name__ in ("OperationalError", "AdminShutdown"):
        return 503, "DEPENDENCY_UNAVAILABLE"
    return 500, "INTERNAL_ERROR"
