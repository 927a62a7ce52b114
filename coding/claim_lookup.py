"""Adapter from the terminology engine to what the claim edits need (coding.claims.CodeFacts).

Code facts come from one set-based query on the partitioned code table for the codes a worker
process has not met yet: each code's own row and its `claim_facts`, which the loader worked out once
per release (coding.facts: inherited Excludes1 ranges, the manifestation convention). The API's
lookups resolve full CodeInfo through the Redis cache instead (coding.lookup); measured on a
1,000,000-line file, building CodeInfo for each code cost a worker ~0.1 ms a code, claim facts ~0.01.
Free-text suggestions come from `coding.analyze.analyze_texts`.

Codes repeat massively across the chunks of a file and across files, so each worker process keeps
the facts it has built, keyed by the active release: a chunk resolves only codes this process has
not seen, and a newly loaded release starts the memo afresh.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import orjson
from sqlalchemy.engine import Connection

from cache.client import Cache
from coding.analyze import analyze_texts
from coding.claim_rules import age_rule, sex_rule
from coding.claims import CodeFacts, excludes1_categories, excludes1_index
from coding.lookup import unknown_code, who_only_codes
from coding.normalize import CODE_RE
from db.codes import active_codes, categories, fetch_claim_rows, releases_state

SUGGESTIONS = 3  # ranked codes per dx_text
MEMO_LIMIT = 200_000  # codes per process (ICD-10-CM has ~75,000; the rest are bad codes seen)


@dataclass
class _State:
    """What the memo holds for one state of the loaded releases; replaced whole, never emptied, so a
    thread always reads facts, notes and categories of one and the same state."""

    release: tuple | None = None  # db.codes.releases_state it was built under
    facts: dict[str, CodeFacts | None] = field(default_factory=dict)
    # claim facts JSON -> (excludes1_index, manifestation, excludes1_categories)
    parsed: dict[str, tuple[dict, bool, frozenset[str] | None]] = field(default_factory=dict)
    categories: list[str] = field(default_factory=list)  # of every loaded release, sorted
    windows: dict[tuple, tuple] = field(default_factory=dict)  # one tuple per distinct set of windows


class FactsMemo:
    """Per-process CodeFacts (None for a code no release holds), for one state of the loaded releases
    at a time (a release loaded or made active starts it afresh)."""

    def __init__(self) -> None:
        self.state = _State()

    def known(self, conn: Connection, codes: Iterable[str]) -> dict[str, CodeFacts | None]:
        """The memo, holding every one of `codes` (None for a code no release holds); read it with
        `.get`, never change it. Returning the memo rather than a dict of `codes` saves a chunk a
        pass over its ~25,000 codes in Python.

        Safe to call from several threads (the test worker's pool is threads): the memo only ever
        gains complete entries, all of a batch in one `dict.update`; a thread that does not see a
        code yet fetches it too."""
        release = releases_state(conn)  # a release loaded beside the active one changes windows too
        state = self.state
        if release != state.release or len(state.facts) > MEMO_LIMIT:
            state = self.state = _State(release, categories=categories(conn))
        memo = state.facts
        missing = (codes if isinstance(codes, set) else set(codes)).difference(memo)
        if missing:
            found: dict[str, CodeFacts | None] = dict.fromkeys(missing)
            rows = fetch_claim_rows(conn, [c for c in missing if CODE_RE.match(c)])
            found.update(self.build(state, rows, found))
            who = who_only_codes()
            for code in missing:
                if found[code] is None and code in who:
                    info = unknown_code(code)
                    found[code] = CodeFacts(code=code, dotted=info.dotted, description="", billable=False,
                                            who_only=info.message)
            memo.update(found)
        return memo

    def lookup(self, conn: Connection, codes: Iterable[str]) -> dict[str, CodeFacts]:
        """`codes` -> their CodeFacts, for those some release holds."""
        wanted = set(codes)
        memo = self.known(conn, wanted)
        return {c: f for c in wanted if (f := memo.get(c)) is not None}

    @staticmethod
    def build(state: _State, rows: list[tuple], keys: Mapping[str, object] | None = None) -> dict[str, CodeFacts]:
        """Rows of fetch_claim_rows (active first, then newest) -> CodeFacts from each code's first row,
        with the effective windows of every release holding it. A code that is a key of `keys` is
        that very string (the memo's key), not a second copy of it (~4 MB over a release's codes)."""
        windows: dict[str, list[tuple[date, date]]] = {}
        first: dict[str, tuple] = {}
        for row in rows:
            windows.setdefault(row[0], []).append((row[6], row[7]))
            first.setdefault(row[0], row)
        built = {}
        shared, cache = state.windows, state.parsed
        same = {k: k for k in keys} if keys else {}
        for code, (_, dotted, description, billable, seventh, active, _, _, facts) in first.items():
            code = same.get(code, code)
            parsed = cache.get(facts)  # thousands of codes share their ancestors' notes
            if parsed is None:
                value = orjson.loads(facts)
                ranges = [tuple(r) for r in value["x"]]
                parsed = cache[facts] = (excludes1_index(ranges), value["m"],
                                         excludes1_categories(ranges, state.categories))
            releases = tuple(sorted(windows[code]))
            built[code] = CodeFacts(
                code=code, dotted=dotted, description=description, billable=billable, requires_seventh=seventh,
                manifestation=parsed[1], current=active, releases=shared.setdefault(releases, releases),
                excludes1=parsed[0], xcats=parsed[2], sex=sex_rule(code), age=age_rule(code))
        return built


_memo = FactsMemo()


def warm_facts(conn: Connection, batch: int = 5_000) -> int:
    """Build the facts of every billable code of the active release into this process's memo (a
    worker does it once before forking its pool processes, which then share them); returns how many.
    In batches, so the rows fetched leave little freed memory behind for the pool processes to map."""
    codes = active_codes(conn, billable=True)
    for i in range(0, len(codes), batch):
        _memo.known(conn, set(codes[i:i + batch]))
    return len(codes)


def known_facts(conn: Connection, codes: Iterable[str]) -> Mapping[str, CodeFacts | None]:
    """A mapping to read `codes`' CodeFacts from with `.get` (None: no release holds the code); it
    may hold other codes too. What a chunk of claims uses (coding.claims.Resolver)."""
    return _memo.known(conn, codes)


def resolve_facts(conn: Connection, codes: Iterable[str]) -> dict[str, CodeFacts]:
    """Normalized codes -> CodeFacts for those some loaded release holds, and for WHO-only codes
    (`who_only` set to the engine's message); codes absent from the answer are unknown."""
    return _memo.lookup(conn, codes)


def suggest_codes(conn: Connection, cache: Cache | None, texts: Sequence[str]) -> dict[str, list[dict]]:
    """Free clinical text -> the engine's ranked suggestions (best first, confidence in [0, 1])."""
    texts = list(texts)
    ranked = analyze_texts(conn, cache, texts, limit=SUGGESTIONS)
    return {text: list(found) for text, found in zip(texts, ranked, strict=True)}
