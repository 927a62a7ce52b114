"""Excludes1 (and other) notes that name a character position — "(V01-V09 with 5th character 1)",
"(I69. with final characters -23)" — get that condition as a third element of their range, so
a claim is no longer flagged for the whole range. Notes already loaded are parsed again from their
stored text, and the claim facts of every release are recomputed.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

import orjson
from alembic import op
from sqlalchemy import text

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

KINDS = ("excludes1", "excludes2", "code_first", "use_additional", "code_also")


def _refresh(keep_qualifiers: bool) -> None:
    from coding.tabular import parse_note_ranges
    from db.loader import backfill_claim_facts

    def ranges(note: dict) -> list[list[str]]:
        found = parse_note_ranges(note["text"])
        return [list(r if keep_qualifiers else r[:2]) for r in found]

    def redo(notes: list[dict]) -> list[dict]:
        return [{**note, "ranges": ranges(note)} for note in notes]

    conn = op.get_bind()
    where = " OR ".join(f"{k}::text ILIKE '%character%'" for k in KINDS)
    for row in conn.execute(text(f"SELECT code, release_id, {', '.join(k + '::text' for k in KINDS)} "
                                 f"FROM icd_codes WHERE {where}")).all():
        values = {k: orjson.dumps(redo(orjson.loads(row[i + 2]))).decode() for i, k in enumerate(KINDS)}
        conn.execute(text(f"UPDATE icd_codes SET {', '.join(f'{k} = CAST(:{k} AS jsonb)' for k in KINDS)} "
                          "WHERE code = :code AND release_id = :release"),
                     {**values, "code": row.code, "release": row.release_id})
    for table, key in (("blocks", "id"), ("chapters", "number")):
        for row in conn.execute(text(f"SELECT release_id, {key} AS key, notes::text FROM {table} "
                                     "WHERE notes::text ILIKE '%character%'")).all():
            notes = {kind: redo(found) for kind, found in orjson.loads(row.notes).items()}
            conn.execute(text(f"UPDATE {table} SET notes = CAST(:notes AS jsonb) "
                              f"WHERE release_id = :release AND {key} = :key"),
                         {"notes": orjson.dumps(notes).decode(), "release": row.release_id, "key": row.key})
    conn.execute(text("UPDATE icd_codes SET claim_facts = NULL"))
    backfill_claim_facts(conn)


def upgrade() -> None:
    _refresh(keep_qualifiers=True)


def downgrade() -> None:
    _refresh(keep_qualifiers=False)
