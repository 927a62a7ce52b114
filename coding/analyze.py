"""Symptom analysis: ranked code suggestions per free text, and a combined clinical summary.

`analyze_texts` is what the claims coder calls for `dx_text`; `/v1/analyze` adds `summarize`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import TypedDict

from cache.client import Cache
from cache.tags import cache_key, tags_for
from coding.normalize import fold
from coding.search import SEARCH_TTL, Connect, Query, holder, search_index
from coding.terms import tokens

MAX_TEXT = 500  # free text beyond this is cut, not refused: it comes from claim files
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Suggestion(TypedDict):
    code: str  # dotted
    description: str
    billable: bool
    chapter: int
    confidence: float  # in [0, 1]


def _query(text: str, limit: int) -> Query | None:
    cleaned = fold(_CONTROL.sub(" ", text or "")[:MAX_TEXT])
    return Query(cleaned, limit) if tokens(cleaned) else None


def analyze_texts(conn: Connect, cache: Cache | None, texts: Sequence[str],
                  limit: int = 5) -> list[list[Suggestion]]:
    """Ranked suggestions (confidence in [0, 1], best first) for each text, in input order.

    Set-based for a batch: one index (in process), one Redis MGET for all texts and one MSET for the
    ones computed; a text without searchable words gets an empty list. `cache` may be None or down;
    `conn` may be a Connection or a callable giving one (used only when the index needs a look).
    """
    index = holder.get(conn)
    release = index.release_id or 0
    queries = [_query(t, limit) for t in texts]
    keys = [cache_key("search", release, q.text, q.limit, None, None) if q else "" for q in queries]
    cached = cache.get_many([k for k in keys if k]) if cache else []
    hits = dict(zip([k for k in keys if k], cached, strict=True)) if cached else {}
    fresh: dict[str, list[dict]] = {}
    answers: list[list[Suggestion]] = []
    for query, key in zip(queries, keys, strict=True):
        if query is None:
            answers.append([])
            continue
        results = hits.get(key) or fresh.get(key)
        if results is None:
            results = fresh[key] = search_index(index, query)
        answers.append([_suggestion(r) for r in results])
    if cache and fresh:
        cache.set_many(fresh, SEARCH_TTL, tags_for("search", release))
    return answers


def _suggestion(result: dict) -> Suggestion:
    return Suggestion(code=result["code"], description=result["description"], billable=result["billable"],
                      chapter=result["chapter"], confidence=max(0.0, min(1.0, result["score"])))


def summarize(symptoms: Sequence[str], suggestions: Sequence[list[Suggestion]], top: int = 3) -> dict:
    """The combined view: codes supported by several symptoms first, the chapters implicated, and
    an overall confidence (the mean best confidence, lowered by symptoms that found nothing)."""
    support: dict[str, dict] = {}
    chapters: dict[int, float] = defaultdict(float)
    for position, ranked in enumerate(suggestions):
        for suggestion in ranked[:top]:
            entry = support.setdefault(suggestion["code"], {**suggestion, "symptoms": [], "score": 0.0})
            if position not in entry["symptoms"]:
                entry["symptoms"].append(position)
                entry["score"] += suggestion["confidence"]
            chapters[suggestion["chapter"]] += suggestion["confidence"]
    combined = sorted(support.values(), key=lambda e: (-len(e["symptoms"]), -e["score"], e["code"]))
    best = [ranked[0]["confidence"] if ranked else 0.0 for ranked in suggestions]
    return {
        "codes": [{"code": e["code"], "description": e["description"], "billable": e["billable"],
                   "supported_by": [symptoms[i] for i in e["symptoms"]],
                   "confidence": round(min(1.0, e["score"] / len(suggestions)) if suggestions else 0.0, 4)}
                  for e in combined[:10]],
        "chapters": [{"chapter": c, "weight": round(w, 4)}
                     for c, w in sorted(chapters.items(), key=lambda kv: -kv[1])],
        "confidence": round(sum(best) / len(best), 4) if best else 0.0,
    }
