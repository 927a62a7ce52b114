"""Adapter from the terminology engine to what the claim edits need (coding.claims.CodeFacts).

Code facts come from `coding.lookup.resolve_codes` (Redis MGET, one set-based query for the misses,
no write-back: the memo below holds them) and free-text suggestions from
`coding.analyze.analyze_texts`: there is no second lookup path.

Codes repeat massively across the chunks of a file and across files, so each worker process keeps
the facts it has built, keyed by the active release: a chunk resolves only codes this process has
not seen, and a newly loaded release starts the memo afresh.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from sqlalchemy.engine import Connection

from cache.client import Cache
from coding.analyze import analyze_texts
from coding.claim_rules import age_rule, sex_rule
from coding.claims import CodeFacts, excludes1_index
from coding.lookup import CodeInfo, resolve_codes
from db.codes import active_release_id

SUGGESTIONS = 3  # ranked codes per dx_text
MEMO_LIMIT = 200_000  # codes per process (ICD-10-CM has ~75,000; the rest are bad codes seen)


class FactsMemo:
    """Per-process CodeFacts (None for a code no release holds), for one release at a time."""

    def __init__(self) -> None:
        self.release: int | None = None
        self.facts: dict[str, CodeFacts | None] = {}

    def lookup(self, conn: Connection, cache: Cache | None, codes: Iterable[str]) -> dict[str, CodeFacts]:
        release = active_release_id(conn)
        if release != self.release or len(self.facts) > MEMO_LIMIT:
            self.release, self.facts = release, {}
        memo = self.facts
        wanted = set(codes)
        missing = [c for c in wanted if c not in memo]
        if missing:
            # No write-back: this memo serves the process from now on, and writing each code to
            # Redis cost as much as querying it (the cache is for the API's lookups).
            for code, info in resolve_codes(conn, cache, missing, write_back=False).items():
                memo[code] = code_facts(info)
        return {c: f for c in wanted if (f := memo[c]) is not None}


_memo = FactsMemo()


def code_facts(info: CodeInfo) -> CodeFacts | None:
    """What the edits need, precomputed once per code (per-line work is then dict lookups)."""
    if not info.valid:
        if not info.who_only:
            return None
        return CodeFacts(code=info.code, dotted=info.dotted, description="", billable=False,
                         who_only=info.message)
    return CodeFacts(
        code=info.code, dotted=info.dotted, description=info.description or "", billable=info.billable,
        requires_seventh=info.requires_seventh, manifestation=is_manifestation(info), current=info.active,
        releases=tuple((date.fromisoformat(r["effective_from"]), date.fromisoformat(r["effective_to"]))
                       for r in info.releases),
        excludes1=excludes1_index(tuple(r) for r in info.excludes1_ranges),
        sex=sex_rule(info.code), age=age_rule(info.code))


def is_manifestation(info: CodeInfo) -> bool:
    """The etiology/manifestation convention: a title "... classified elsewhere" at the code or a
    category above it, and a "code first" note there too.

    Stricter than CodeInfo.manifestation (the API's `code_first_required`), which also counts
    code-first notes inherited from a block or chapter: measured on examples/claims_sample.csv,
    that flags ~1,000 poisoning, burn and other lines as MANIFESTATION_FIRST, an edit payers reject.
    """
    titles = [info.description or "", *(p["description"] or "" for p in info.parents)]
    if not any("classified elsewhere" in title.lower() for title in titles):
        return False
    return any(info.code.startswith(note["from"]) for note in info.code_first)


def resolve_facts(conn: Connection, cache: Cache | None, codes: Iterable[str]) -> dict[str, CodeFacts]:
    """Normalized codes -> CodeFacts for those some loaded release holds, and for WHO-only codes
    (`who_only` set to the engine's message); codes absent from the answer are unknown."""
    return _memo.lookup(conn, cache, codes)


def suggest_codes(conn: Connection, cache: Cache | None, texts: Sequence[str]) -> dict[str, list[dict]]:
    """Free clinical text -> the engine's ranked suggestions (best first, confidence in [0, 1])."""
    texts = list(texts)
    ranked = analyze_texts(conn, cache, texts, limit=SUGGESTIONS)
    return {text: list(found) for text, found in zip(texts, ranked, strict=True)}
