"""Search and symptom analysis."""

from __future__ import annotations

import threading
import time
from urllib.parse import unquote_to_bytes

import orjson
from flask import Blueprint, Response, current_app, g, jsonify, request

from api.bodies import ListBody
from api.codes import cache
from api.context import db
from api.errors import ApiError
from coding.analyze import MAX_TEXT, analyze_texts, summarize
from coding.search import SearchError, holder, parse_query, search, take_announced_answers
from db.searchlog import search_log

bp = Blueprint("search", __name__)
MAX_SYMPTOMS = 100


@bp.record_once
def _warm(state) -> None:
    """Build the search index in the background as a web worker starts, not on the first search, and
    keep the answers other processes announce.

    Only where WARM_SEARCH_INDEX is set (the Procfile's web entry): a Celery parent process must not
    run a thread while it forks its pool (a fork in the middle of an import deadlocks the child)."""
    if not state.app.config.get("WARM_SEARCH_INDEX"):
        return
    take_announced_answers()  # a web process: other processes' fresh answers serve its repeats too
    url = state.app.config["DATABASE_URL"]

    def build() -> None:
        from db.engine import get_engine

        try:
            with get_engine(url).connect() as conn:
                holder.get(conn)
        except Exception:  # noqa: BLE001, S110 - the first search builds it (and reports) instead
            pass

    threading.Thread(target=build, name="search-index-warmup", daemon=True).start()


def _require_utf8() -> None:
    """Werkzeug keeps undecodable bytes percent-encoded; a search must refuse them, not match them."""
    try:
        unquote_to_bytes(request.query_string).decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "INVALID_ENCODING", "the query string is not valid UTF-8") from None


@bp.get("/v1/search")
def search_codes():
    _require_utf8()
    args = request.args
    try:
        query = parse_query(args.get("q"), args.get("limit"), args.get("chapter"), args.get("billable"))
    except SearchError as err:
        raise ApiError(400, err.code, str(err)) from None
    results, hit = search(db, cache(), query)  # db is opened only if the index needs a look
    elapsed = (time.perf_counter() - g.started) * 1000
    search_log(current_app.config["DATABASE_URL"]).add(query.text, len(results), elapsed, hit)
    return Response(orjson.dumps({"query": query.text, "results": results}), mimetype="application/json")


SYMPTOMS_BODY = ListBody(
    "symptoms", '"chest pain"', MAX_SYMPTOMS, "TOO_MANY_SYMPTOMS", "analyze", "INVALID_SYMPTOM",
    f"symptom must be non-empty text of at most {MAX_TEXT} characters",
    lambda s: isinstance(s, str) and bool(s.strip()) and len(s) <= MAX_TEXT)


@bp.post("/v1/analyze")
def analyze():
    symptoms = SYMPTOMS_BODY.read()
    ranked = analyze_texts(db, cache(), symptoms)
    return jsonify({"results": [{"symptom": s, "suggestions": r} for s, r in zip(symptoms, ranked, strict=True)],
                    "summary": summarize(symptoms, ranked)})
