"""Code lookup: one code, or a batch of up to 10,000 in input order."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from api.bodies import ListBody
from api.context import db
from api.errors import ApiError
from cache.client import shared_cache
from coding.lookup import lookup_inputs, present, resolve_codes
from coding.normalize import normalize_code

bp = Blueprint("codes", __name__)
MAX_CODES = 10_000
MAX_CODE_CHARS = 64


def cache():
    return shared_cache(current_app.config["CACHE_URL"])


@bp.get("/v1/codes/<path:raw>")
def code(raw: str):
    if len(raw) > MAX_CODE_CHARS or "\ufffd" in raw:
        raise ApiError(400, "INVALID_CODE", f"a code has at most {MAX_CODE_CHARS} characters")
    info = resolve_codes(db(), cache(), [normalize_code(raw)])[normalize_code(raw)]
    if not info.valid:
        raise ApiError(404, "CODE_NOT_FOUND", info.message or "unknown code")
    return jsonify(present(info))


CODES_BODY = ListBody(
    "codes", '"E11.9"', MAX_CODES, "TOO_MANY_CODES", "lookup", "INVALID_CODES",
    f"code must be a string of at most {MAX_CODE_CHARS} characters",
    lambda c: isinstance(c, str) and len(c) <= MAX_CODE_CHARS)


@bp.post("/v1/codes/lookup")
def lookup():
    return jsonify({"results": lookup_inputs(db(), cache(), CODES_BODY.read())})
