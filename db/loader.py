"""Load an ICD-10-CM release (CDC tabular XML) into the partitioned code table: one transaction,
idempotent by checksum, a different release added beside the others with its own effective dates."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Connection

from coding.facts import FactSource, claim_facts, note_ranges
from coding.tabular import CodeRow, Note, Release, parse_release
from db.copy import copy_rows

LOAD_LOCK = 0x1CD10  # advisory lock: one release load at a time


class ReleaseConflict(ValueError):
    pass


@dataclass(frozen=True)
class LoadResult:
    release_id: int
    name: str
    created: bool
    codes: int
    billable: int
    seconds: float
    replaced_active: int | None  # the release that was active before, when this load changed it


def bundled_release_path() -> Path:
    """The CDC tabular XML shipped by simple-icd-10-cm, found without importing the package
    (its import parses the whole release, slowly)."""
    import importlib.util

    spec = importlib.util.find_spec("simple_icd_10_cm")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("simple-icd-10-cm is not installed (run `make install`)")
    data = Path(spec.submodule_search_locations[0]) / "data"
    return next(data.glob("icd10c*-tabular-*.xml"))


# Built in bulk after COPY into an empty table: several times faster than row-by-row GIN inserts.
# Must match migration 0001's definitions.
BULK_BUILT_INDEXES = {
    "icd_codes_search_trgm":
        "CREATE INDEX icd_codes_search_trgm ON icd_codes USING gin (search_doc gin_trgm_ops)",
    "icd_codes_search_tsv":
        "CREATE INDEX icd_codes_search_tsv ON icd_codes USING gin (search_tsv)",
}

CODE_COLUMNS = (
    "code", "release_id", "active", "dotted", "description", "billable", "chapter", "block", "parent",
    "ancestors", "depth", "inclusion_terms", "includes", "excludes1", "excludes2", "code_first",
    "use_additional", "code_also", "seven_char", "requires_seventh", "search_doc", "claim_facts",
)


def _notes(notes: tuple[Note, ...]) -> str:
    return orjson.dumps([{"text": n.text, "ranges": [list(r) for r in n.ranges]} for n in notes]).decode()


def _code_row(row: CodeRow, release_id: int, active: bool, facts: str) -> tuple:
    search_doc = " ; ".join((row.description, *row.inclusion_terms))
    return (
        row.code, release_id, active, row.dotted, row.description, row.billable, row.chapter, row.block,
        row.parent, list(row.ancestors), row.depth, list(row.inclusion_terms), list(row.includes),
        _notes(row.excludes1), _notes(row.excludes2), _notes(row.code_first),
        _notes(row.use_additional), _notes(row.code_also), orjson.dumps(row.seven_char).decode(),
        row.requires_seventh, search_doc, facts,
    )


def _notes_map(notes: dict[str, tuple[Note, ...]]) -> str:
    return orjson.dumps({kind: orjson.loads(_notes(n)) for kind, n in notes.items() if n}).decode()


def load_release(conn: Connection, path: str | Path) -> LoadResult:
    """Parse then load inside the caller's transaction; the caller commits (or nothing changes)."""
    started = time.perf_counter()
    release = parse_release(path)
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOAD_LOCK})
    previous = conn.execute(text("SELECT release_id FROM icd_codes WHERE active LIMIT 1")).scalar()
    existing = conn.execute(
        text("SELECT id, name, checksum, codes, billable FROM releases WHERE checksum = :c OR name = :n"),
        {"c": release.info.checksum, "n": release.info.name},
    ).first()
    if existing is not None:
        if existing.checksum != release.info.checksum:
            raise ReleaseConflict(
                f"a different file for release {existing.name!r} is already loaded; "
                "releases are immutable once loaded")
        return LoadResult(existing.id, existing.name, False, existing.codes, existing.billable,
                          time.perf_counter() - started, None)
    newest = conn.execute(text("SELECT max(effective_from) FROM releases")).scalar()
    becomes_active = newest is None or release.info.effective_from > newest
    release_id = _insert_release(conn, release, str(path), becomes_active)
    _recompute_effective_dates(conn)
    active = release_id if becomes_active else previous
    if becomes_active and previous is not None:
        conn.execute(text("UPDATE icd_codes SET active = false WHERE release_id = :r AND active"),
                     {"r": previous})
    conn.execute(text("REFRESH MATERIALIZED VIEW CONCURRENTLY mv_chapter_stats"))
    # Autovacuum analyzes the partitions but never the partitioned parent; without its statistics
    # the planner takes a code for non-unique and joins a list of codes by scanning every partition.
    conn.execute(text("ANALYZE icd_codes"))
    return LoadResult(release_id, release.info.name, True, len(release.codes), _billable(release),
                      time.perf_counter() - started, previous if previous != active else None)


def _billable(release: Release) -> int:
    return sum(1 for c in release.codes if c.billable)


def _insert_release(conn: Connection, release: Release, source: str, active: bool) -> int:
    info = release.info
    release_id = conn.execute(
        text("""INSERT INTO releases (name, fiscal_year, effective_from, effective_to, checksum, source,
                                      codes, billable)
                VALUES (:name, :fy, :f, :t, :c, :s, :codes, :billable) RETURNING id"""),
        {"name": info.name, "fy": info.fiscal_year, "f": info.effective_from, "t": info.effective_to,
         "c": info.checksum, "s": Path(source).name, "codes": len(release.codes),
         "billable": _billable(release)},
    ).scalar_one()
    copy_rows(conn, "chapters", ("release_id", "number", "first_code", "last_code", "description", "notes"),
              ((release_id, ch.number, ch.first, ch.last, ch.description,
                _notes_map(release.chapter_notes.get(ch.number, {}))) for ch in release.chapters))
    copy_rows(conn, "blocks",
              ("release_id", "id", "first_code", "last_code", "chapter", "description", "notes"),
              ((release_id, b.id, b.first, b.last, b.chapter, b.description,
                _notes_map(release.block_notes.get(b.id, {}))) for b in release.blocks))
    empty = conn.execute(text("SELECT NOT EXISTS (SELECT 1 FROM icd_codes)")).scalar()
    if empty:  # nobody can be reading yet, so the exclusive lock of DROP INDEX costs nothing
        conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
        for name in BULK_BUILT_INDEXES:
            conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
    facts = dict(_release_facts(release))
    copy_rows(conn, "icd_codes", CODE_COLUMNS,
              (_code_row(c, release_id, active, facts[c.code]) for c in release.codes))
    if empty:
        for ddl in BULK_BUILT_INDEXES.values():
            conn.execute(text(ddl))
    return release_id


def _release_facts(release: Release):
    """(code, claim facts JSON) of a parsed release (coding.facts)."""
    sources = {c.code: FactSource(c.code, c.description, c.ancestors, c.block, c.chapter,
                                  tuple(r for n in c.excludes1 for r in n.ranges), bool(c.code_first))
               for c in release.codes}
    blocks = {b: tuple(r for n in notes.get("excludes1", ()) for r in n.ranges)
              for b, notes in release.block_notes.items()}
    chapters = {ch: tuple(r for n in notes.get("excludes1", ()) for r in n.ranges)
                for ch, notes in release.chapter_notes.items()}
    return claim_facts(sources, blocks, chapters)


def backfill_claim_facts(conn: Connection) -> int:
    """Claim facts for releases loaded before they existed (migration 0004); returns codes updated."""
    updated = 0
    for release_id in conn.execute(text("""SELECT DISTINCT release_id FROM icd_codes
                                           WHERE claim_facts IS NULL""")).scalars().all():
        rows = conn.execute(text("""SELECT code, description, ancestors, block, chapter, excludes1::text,
                                           jsonb_array_length(code_first) > 0
                                    FROM icd_codes WHERE release_id = :r"""), {"r": release_id}).all()
        sources = {r[0]: FactSource(r[0], r[1], tuple(r[2]), r[3], r[4], note_ranges(orjson.loads(r[5])), r[6])
                   for r in rows}
        blocks = {b: note_ranges((notes or {}).get("excludes1")) for b, notes in conn.execute(
            text("SELECT id, notes FROM blocks WHERE release_id = :r"), {"r": release_id})}
        chapters = {n: note_ranges((notes or {}).get("excludes1")) for n, notes in conn.execute(
            text("SELECT number, notes FROM chapters WHERE release_id = :r"), {"r": release_id})}
        conn.execute(text("CREATE TEMP TABLE claim_facts_new (code text, facts json) ON COMMIT DROP"))
        copy_rows(conn, "claim_facts_new", ("code", "facts"), claim_facts(sources, blocks, chapters))
        updated += conn.execute(text("""UPDATE icd_codes c SET claim_facts = n.facts FROM claim_facts_new n
                                        WHERE c.release_id = :r AND c.code = n.code"""),
                                {"r": release_id}).rowcount
        conn.execute(text("DROP TABLE claim_facts_new"))
    return updated


def _recompute_effective_dates(conn: Connection) -> None:
    """A release is in force from its own date until the day before the next one, at most to the end
    of its fiscal year (ICD-10-CM: October 1 releases, April 1 updates)."""
    conn.execute(text("""
        UPDATE releases r SET effective_to = LEAST(make_date(r.fiscal_year, 9, 30), n.next_from - 1)
        FROM (SELECT id, lead(effective_from) OVER (ORDER BY effective_from) AS next_from
              FROM releases) n
        WHERE n.id = r.id
          AND r.effective_to IS DISTINCT FROM LEAST(make_date(r.fiscal_year, 9, 30), n.next_from - 1)"""))
