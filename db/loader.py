"""Load an ICD-10-CM release (CDC tabular XML) into the partitioned code table: one transaction,
idempotent by checksum, a different release added beside the others with its own effective dates."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Connection

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
    import simple_icd_10_cm

    data = Path(simple_icd_10_cm.__file__).parent / "data"
    return next(data.glob("icd10c*-tabular-*.xml"))


CODE_COLUMNS = (
    "code", "release_id", "dotted", "description", "billable", "chapter", "block", "parent",
    "ancestors", "depth", "inclusion_terms", "includes", "excludes1", "excludes2", "code_first",
    "use_additional", "code_also", "seven_char", "requires_seventh", "search_doc",
)


def _notes(notes: tuple[Note, ...]) -> str:
    return orjson.dumps([{"text": n.text, "ranges": [list(r) for r in n.ranges]} for n in notes]).decode()


def _code_row(row: CodeRow, release_id: int) -> tuple:
    search_doc = " ; ".join((row.description, *row.inclusion_terms))
    return (
        row.code, release_id, row.dotted, row.description, row.billable, row.chapter, row.block,
        row.parent, list(row.ancestors), row.depth, list(row.inclusion_terms), list(row.includes),
        _notes(row.excludes1), _notes(row.excludes2), _notes(row.code_first),
        _notes(row.use_additional), _notes(row.code_also), orjson.dumps(row.seven_char).decode(),
        row.requires_seventh, search_doc,
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
    release_id = _insert_release(conn, release, str(path))
    _recompute_effective_dates(conn)
    active = _activate_latest(conn)
    conn.execute(text("REFRESH MATERIALIZED VIEW CONCURRENTLY mv_chapter_stats"))
    billable = sum(1 for c in release.codes if c.billable)
    return LoadResult(release_id, release.info.name, True, len(release.codes), billable,
                      time.perf_counter() - started, previous if previous != active else None)


def _insert_release(conn: Connection, release: Release, source: str) -> int:
    info = release.info
    release_id = conn.execute(
        text("""INSERT INTO releases (name, fiscal_year, effective_from, effective_to, checksum, source,
                                      codes, billable)
                VALUES (:name, :fy, :f, :t, :c, :s, :codes, :billable) RETURNING id"""),
        {"name": info.name, "fy": info.fiscal_year, "f": info.effective_from, "t": info.effective_to,
         "c": info.checksum, "s": Path(source).name, "codes": len(release.codes),
         "billable": sum(1 for c in release.codes if c.billable)},
    ).scalar_one()
    copy_rows(conn, "chapters", ("release_id", "number", "first_code", "last_code", "description", "notes"),
              ((release_id, ch.number, ch.first, ch.last, ch.description,
                _notes_map(release.chapter_notes.get(ch.number, {}))) for ch in release.chapters))
    copy_rows(conn, "blocks", ("release_id", "id", "first_code", "last_code", "chapter", "description", "notes"),
              ((release_id, b.id, b.first, b.last, b.chapter, b.description,
                _notes_map(release.block_notes.get(b.id, {}))) for b in release.blocks))
    copy_rows(conn, "icd_codes", CODE_COLUMNS, (_code_row(c, release_id) for c in release.codes))
    return release_id


def _recompute_effective_dates(conn: Connection) -> None:
    """A release is in force from its own date until the day before the next one, at most to the end
    of its fiscal year (ICD-10-CM: October 1 releases, April 1 updates)."""
    conn.execute(text("""
        UPDATE releases r SET effective_to = LEAST(make_date(r.fiscal_year, 9, 30), n.next_from - 1)
        FROM (SELECT id, lead(effective_from) OVER (ORDER BY effective_from) AS next_from
              FROM releases) n
        WHERE n.id = r.id
          AND r.effective_to IS DISTINCT FROM LEAST(make_date(r.fiscal_year, 9, 30), n.next_from - 1)"""))


def _activate_latest(conn: Connection) -> int:
    latest = conn.execute(text("SELECT id FROM releases ORDER BY effective_from DESC, id DESC LIMIT 1")).scalar_one()
    conn.execute(text("UPDATE icd_codes SET active = (release_id = :r) WHERE active <> (release_id = :r)"),
                 {"r": latest})
    return latest
