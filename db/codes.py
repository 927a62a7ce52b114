"""Set-based reads of the code table: one query for any number of codes, never one per code."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.engine import Connection

DETAIL_COLUMNS = """c.code, c.dotted, c.description, c.billable, c.chapter, c.block, c.parent,
    c.ancestors, c.depth, c.inclusion_terms, c.includes, c.excludes1, c.excludes2, c.code_first,
    c.use_additional, c.code_also, c.seven_char, c.requires_seventh, c.release_id"""


def fetch_active(conn: Connection, codes: Sequence[str]) -> dict[str, dict]:
    """Rows of the active release for the given normalized codes (absent ones are simply missing)."""
    rows = conn.execute(
        text(f"SELECT {DETAIL_COLUMNS} FROM icd_codes c WHERE c.code = ANY(:codes) AND c.active"),
        {"codes": list(set(codes))},
    ).mappings()
    return {row["code"]: dict(row) for row in rows}


def releases_holding(conn: Connection, codes: Sequence[str]) -> dict[str, list[dict]]:
    """For each code, the loaded releases that hold it, with their effective dates."""
    rows = conn.execute(text("""
        SELECT c.code, r.name, r.effective_from, r.effective_to, c.billable
        FROM icd_codes c JOIN releases r ON r.id = c.release_id
        WHERE c.code = ANY(:codes) ORDER BY c.code, r.effective_from"""), {"codes": list(set(codes))})
    held: dict[str, list[dict]] = {}
    for row in rows:
        held.setdefault(row.code, []).append({
            "release": row.name, "effective_from": row.effective_from.isoformat(),
            "effective_to": row.effective_to.isoformat(), "billable": row.billable})
    return held


def list_releases(conn: Connection) -> list[dict]:
    rows = conn.execute(text("""
        SELECT name, fiscal_year, effective_from, effective_to, codes, billable, loaded_at, source,
               id = (SELECT release_id FROM icd_codes WHERE active LIMIT 1) AS active
        FROM releases ORDER BY effective_from""")).mappings()
    return [{**row, "effective_from": row["effective_from"].isoformat(),
             "effective_to": row["effective_to"].isoformat(),
             "loaded_at": row["loaded_at"].isoformat()} for row in rows]
