"""Code lookup: lenient input, the conventions' inherited notes, batch-resolved through the cache.

`resolve_codes` is the interface the claims coder calls; the API's lookup endpoints use it too.
"""

from __future__ import annotations

import csv
import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import date
from functools import cache as memoize
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from cache.client import Cache
from cache.tags import chapter_tag, code_key, kind_tag, release_tag
from coding.normalize import CODE_RE, dotted, normalize_code
from db.codes import active_release_id, fetch_with_prefixes, release_notes

CODE_TTL = 24 * 3600
MISS_TTL = 300  # an unknown code is re-checked after 5 minutes (or at once when a release loads)
DATA = Path(__file__).parent / "data"
NOTE_KINDS = ("excludes1", "excludes2", "code_first", "use_additional", "code_also")
ELSEWHERE = "in diseases classified elsewhere"


@dataclass
class CodeInfo:
    """One code as the conventions see it. Plain JSON types only (it is cached as JSON).

    Notes (`excludes1` ... `code_also`) are effective: the code's own, then its ancestors', its
    block's and its chapter's, each `{"text", "ranges", "from"}`. `excludes1_ranges` are the parsed
    `[lo, hi]` ranges of all of them: a code c matches iff `c >= lo and c[:len(hi)] <= hi`; a third
    element is a character-position condition the code must also meet (`coding.tabular.qualifier_holds`).
    """

    code: str
    dotted: str
    valid: bool
    description: str | None = None
    billable: bool = False
    active: bool = False  # in the active (newest) release
    chapter: int | None = None
    chapter_description: str | None = None
    block: str | None = None
    block_description: str | None = None
    parents: list[dict] = field(default_factory=list)  # [{code, description}], top-down
    requires_seventh: bool = False
    seven_char: dict[str, str] = field(default_factory=dict)
    inclusion_terms: list[str] = field(default_factory=list)
    excludes1: list[dict] = field(default_factory=list)
    excludes1_ranges: list[list[str]] = field(default_factory=list)
    excludes2: list[dict] = field(default_factory=list)
    code_first: list[dict] = field(default_factory=list)
    use_additional: list[dict] = field(default_factory=list)
    code_also: list[dict] = field(default_factory=list)
    manifestation: bool = False
    releases: list[dict] = field(default_factory=list)  # [{release, effective_from, effective_to, billable}]
    who_only: bool = False
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        # Shallow: the values are already plain JSON types, and dataclasses.asdict's recursive
        # deep copy cost ~1 ms a code (most of resolving a claim chunk's codes).
        return {name: getattr(self, name) for name in _FIELD_NAMES}

    def effective_on(self, day: date) -> bool:
        """True if a loaded release holding this code is in force on `day`."""
        iso = day.isoformat()
        return any(r["effective_from"] <= iso <= r["effective_to"] for r in self.releases)


_FIELD_NAMES = tuple(f.name for f in fields(CodeInfo))


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector around building a batch of acyclic records.

    Thousands of fresh dicts and lists trigger collection after collection that walks every live
    object (measured: 2-3x the whole cost of building 10,000 CodeInfo). Nothing built here forms a
    cycle, so reference counting frees it all; the collector resumes afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@memoize
def who_only_codes() -> dict[str, str]:
    """WHO ICD-10 codes that ICD-10-CM does not have (code -> WHO title); data/who_only.csv."""
    with (DATA / "who_only.csv").open(newline="", encoding="utf-8") as handle:
        return {row["code"]: row["description"] for row in csv.DictReader(handle)}


def unknown_code(code: str) -> CodeInfo:
    """The CodeInfo of a code no loaded release holds, saying why."""
    shown = dotted(code) if CODE_RE.match(code) else code
    if not CODE_RE.match(code):
        message = "not an ICD-10-CM code (expected a letter, two characters, then up to 4 more)"
        return CodeInfo(code=code, dotted=shown, valid=False, message=message)
    who = who_only_codes().get(code)
    if who:
        message = (f"{shown} is a WHO ICD-10 code ({who}) that does not exist in ICD-10-CM; "
                   "use the ICD-10-CM code for the condition")
        return CodeInfo(code=code, dotted=shown, valid=False, who_only=True, message=message)
    return CodeInfo(code=code, dotted=shown, valid=False,
                    message=f"{shown} is not in any loaded ICD-10-CM release")


def _notes(sources: Iterable[tuple[str, dict]], kind: str, tail: list[dict] = ()) -> list[dict]:
    seen: set[str] = set()
    notes: list[dict] = []
    for origin, holder in sources:
        for note in holder.get(kind) or []:
            if note["text"] not in seen:
                seen.add(note["text"])
                notes.append({"text": note["text"], "ranges": note["ranges"], "from": origin})
    return notes + [note for note in tail if note["text"] not in seen]


_tails: dict[tuple, list[dict]] = {}


def _tail(row: dict, kind: str) -> list[dict]:
    """The block's and chapter's notes of one kind (shared by thousands of codes: memoized)."""
    key = (row["release_id"], row["block"], row["chapter"], kind)
    tail = _tails.get(key)
    if tail is None:
        tail = _tails[key] = _notes([(row["block"], row["block_notes"] or {}),
                                     (f"chapter {row['chapter']}", row["chapter_notes"] or {})], kind)
    return tail


def details(conn: Connection, codes: Sequence[str]) -> dict[str, dict]:
    """Per known code: its newest row (active release first) with `parents` (ancestor rows of the
    same release, top-down), `releases` holding it, and its block's and chapter's titles and notes."""
    rows = fetch_with_prefixes(conn, codes)
    by_key = {(r["code"], r["release_id"]): r for r in rows}
    holding: dict[str, list[dict]] = {}
    newest: dict[str, dict] = {}
    for row in rows:  # active first, then newest release first
        newest.setdefault(row["code"], row)
        holding.setdefault(row["code"], []).append({
            "release": row["release"], "effective_from": row["effective_from"].isoformat(),
            "effective_to": row["effective_to"].isoformat(), "billable": row["billable"]})
    found = {}
    for code in codes:
        row = newest.get(code)
        if row is None:
            continue
        notes = release_notes(conn, row["release_id"])
        chapter = notes["chapters"].get(row["chapter"], (None, {}))
        block = notes["blocks"].get(row["block"], (None, {}))
        found[code] = {
            **row, "parents": [by_key[(a, row["release_id"])] for a in row["ancestors"]
                               if (a, row["release_id"]) in by_key],
            "releases": sorted(holding[code], key=lambda r: r["effective_from"]),
            "chapter_description": chapter[0], "chapter_notes": chapter[1],
            "block_description": block[0], "block_notes": block[1]}
    return found


def build_info(row: dict) -> CodeInfo:
    """A CodeInfo from `details` output."""
    ancestors = sorted(row["parents"], key=lambda a: a["depth"])
    # Nearest first: the code, its ancestors bottom-up, its block, its chapter.
    sources = [(row["code"], row), *((a["code"], a) for a in reversed(ancestors))]
    notes = {kind: _notes(sources, kind, _tail(row, kind)) for kind in NOTE_KINDS}
    pairs = dict.fromkeys(tuple(r) for note in notes["excludes1"] for r in note["ranges"])
    ranges = [list(r) for r in pairs]
    seven = row["seven_char"] or {}
    if row["requires_seventh"] and not seven:
        seven = next((a["seven_char"] for a in reversed(ancestors) if a["seven_char"]), {})
    manifestation = bool(notes["code_first"]) or ELSEWHERE in row["description"].lower()
    return CodeInfo(
        code=row["code"], dotted=row["dotted"], valid=True, description=row["description"],
        billable=row["billable"], active=row["active"], chapter=row["chapter"],
        chapter_description=row["chapter_description"], block=row["block"],
        block_description=row["block_description"],
        parents=[{"code": a["dotted"], "description": a["description"]} for a in ancestors],
        requires_seventh=row["requires_seventh"], seven_char=seven,
        inclusion_terms=list(row["inclusion_terms"]), excludes1_ranges=ranges, manifestation=manifestation,
        releases=row["releases"],
        **notes,
    )


def resolve_codes(conn: Connection, cache: Cache | None, codes: Sequence[str],
                  write_back: bool = True) -> dict[str, CodeInfo]:
    """Resolve normalized codes (uppercase, no dot) to CodeInfo, every input present in the answer.

    Redis MGET first; the misses in one set-based query on the partitioned table; what was found is
    MSET with a TTL (tagged by release, kind and chapter), unknown codes too for a few minutes.
    Unknown or malformed codes come back as `CodeInfo(valid=False, message=..., who_only=...)`,
    never None. `cache` may be None or down: then it is PostgreSQL alone, same answers.

    `write_back=False` reads the cache but does not store the misses: for a caller that keeps its
    own memo (the claims workers), where encoding and writing each code cost about as much as
    querying it (measured: ~40% of resolving 10,000 codes) and the next reader gains little.
    """
    with gc_paused():
        return _resolve(conn, cache, codes, write_back)


def _resolve(conn: Connection, cache: Cache | None, codes: Sequence[str],
             write_back: bool = True) -> dict[str, CodeInfo]:
    wanted = list(dict.fromkeys(codes))
    found: dict[str, CodeInfo] = {}
    cached = cache.get_many([code_key(c) for c in wanted]) if cache else [None] * len(wanted)
    for code, hit in zip(wanted, cached, strict=True):
        if hit is not None:
            found[code] = CodeInfo(**hit)
    misses = [c for c in wanted if c not in found and CODE_RE.match(c)]
    rows = details(conn, misses)
    fresh: dict[str, CodeInfo] = {c: build_info(row) for c, row in rows.items()}
    unknown = [c for c in misses if c not in rows]
    if cache and write_back and (fresh or unknown):
        _store(conn, cache, rows, fresh, unknown)
    found.update(fresh)
    for code in wanted:
        if code not in found:
            found[code] = unknown_code(code)
    return found


def _store(conn: Connection, cache: Cache, rows: dict[str, dict], fresh: dict[str, CodeInfo],
           unknown: list[str]) -> None:
    if fresh:
        cache.set_many(
            {code_key(c): info.to_dict() for c, info in fresh.items()}, CODE_TTL, [kind_tag("code")],
            key_tags={code_key(c): (release_tag(rows[c]["release_id"]), chapter_tag(info.chapter))
                      for c, info in fresh.items()})
    if unknown:
        release = active_release_id(conn)
        tags = [kind_tag("code_miss")] + ([release_tag(release)] if release is not None else [])
        cache.set_many({code_key(c): unknown_code(c).to_dict() for c in unknown}, MISS_TTL, tags)


def lookup_inputs(conn: Connection, cache: Cache | None, inputs: Sequence[str]) -> list[dict]:
    """The API's lookup: one entry per raw input, same order, duplicates kept."""
    normalized = [normalize_code(raw) if isinstance(raw, str) else "" for raw in inputs]
    infos = resolve_codes(conn, cache, normalized)
    return [{"input": raw, **present(infos[code])} for raw, code in zip(inputs, normalized, strict=True)]


def present(info: CodeInfo) -> dict[str, Any]:
    """A CodeInfo as the API shows it (dotted codes)."""
    if not info.valid:
        return {"code": info.dotted or None, "valid": False, "who_only": info.who_only,
                "message": info.message}
    body = info.to_dict()
    body.update(code=info.dotted, code_first_required=info.manifestation)
    for key in ("dotted", "who_only", "message"):
        body.pop(key)
    return body


def analyze_texts(conn: Connection, cache: Cache | None, texts: Sequence[str], limit: int = 5):
    """Ranked code suggestions for each free text (see coding.analyze.analyze_texts)."""
    from coding.analyze import analyze_texts as analyze

    return analyze(conn, cache, texts, limit=limit)
