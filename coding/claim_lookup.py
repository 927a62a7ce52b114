"""Adapter from the terminology engine to what the claim edits need (coding.claims.CodeFacts).

Until the engine's `coding.lookup.resolve_codes` / `analyze_texts` land (Redis MGET, one set-based
query for the misses, MSET), this is one set-based query per chunk on the partitioned code table:
one batch per chunk, never a query per line. Switching over touches only this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import text
from sqlalchemy.engine import Connection

from coding.claims import CodeFacts, excludes1_index

_FACTS_SQL = text("""
WITH q AS (SELECT DISTINCT unnest(CAST(:codes AS text[])) AS code),
hit AS (SELECT c.code, c.dotted, c.description, c.billable, c.requires_seventh, c.active, c.release_id,
               c.ancestors, c.block, c.chapter, c.excludes1, c.code_first
        FROM icd_codes c JOIN q ON c.code = q.code),
active AS (SELECT release_id FROM icd_codes WHERE active LIMIT 1)
SELECT 'code' AS kind, h.code, h.dotted, h.description, h.billable, h.requires_seventh, h.active,
       r.effective_from, r.effective_to, h.ancestors, h.block, h.chapter, h.excludes1, h.code_first
FROM hit h JOIN releases r ON r.id = h.release_id
UNION ALL
SELECT 'ancestor', c.code, NULL, c.description, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       c.excludes1, c.code_first
FROM icd_codes c
WHERE c.active AND c.code IN (SELECT DISTINCT unnest(ancestors) FROM hit WHERE active)
UNION ALL
SELECT 'block', b.id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       coalesce(b.notes->'excludes1', '[]'), '[]'
FROM blocks b WHERE b.release_id = (SELECT release_id FROM active)
  AND b.id IN (SELECT block FROM hit WHERE active)
UNION ALL
SELECT 'chapter', ch.number::text, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       coalesce(ch.notes->'excludes1', '[]'), '[]'
FROM chapters ch WHERE ch.release_id = (SELECT release_id FROM active)
  AND ch.number IN (SELECT chapter FROM hit WHERE active)
""")

_SUGGEST_SQL = text("""
SELECT t.q, s.dotted, s.description, s.score
FROM unnest(CAST(:texts AS text[])) AS t(q)
CROSS JOIN LATERAL (
    SELECT c.dotted, c.description,
           ts_rank_cd(c.search_tsv, to_tsquery('english',
               replace(plainto_tsquery('english', t.q)::text, '&', '|'))) AS score
    FROM icd_codes c
    WHERE c.active AND c.billable AND c.search_tsv @@ to_tsquery('english',
        replace(plainto_tsquery('english', t.q)::text, '&', '|'))
    ORDER BY score DESC, c.code LIMIT 3) s
""")


def _ranges(notes: list) -> list[tuple[str, str]]:
    return [(lo, hi) for note in notes or () for lo, hi in note.get("ranges", ())]


def _is_manifestation(descriptions: list[str], code_first: bool) -> bool:
    """ICD-10-CM marks manifestation codes by a "code first" note and an "in diseases classified
    elsewhere" title (at the code or its category)."""
    return code_first and any("classified elsewhere" in (d or "").lower() for d in descriptions)


def resolve_facts(conn: Connection, codes: Iterable[str]) -> dict[str, CodeFacts]:
    """Normalized codes -> CodeFacts for those some loaded release holds; one round trip."""
    rows = conn.execute(_FACTS_SQL, {"codes": sorted(set(codes))}).all()
    context = {(r.kind, r.code): r for r in rows if r.kind != "code"}
    by_code: dict[str, list] = {}
    for row in rows:
        if row.kind == "code":
            by_code.setdefault(row.code, []).append(row)
    facts = {}
    for code, holding in by_code.items():
        latest = max(holding, key=lambda r: (r.active, r.effective_from))
        ranges = _ranges(latest.excludes1)
        code_first = bool(latest.code_first)
        descriptions = [latest.description]
        if latest.active:
            for parent in latest.ancestors:
                if (anc := context.get(("ancestor", parent))) is not None:
                    ranges += _ranges(anc.excludes1)
                    code_first = code_first or bool(anc.code_first)
                    descriptions.append(anc.description)
            for key in (("block", latest.block), ("chapter", str(latest.chapter))):
                if (ctx := context.get(key)) is not None:
                    ranges += _ranges(ctx.excludes1)
        facts[code] = CodeFacts(
            code=code, dotted=latest.dotted, description=latest.description, billable=latest.billable,
            requires_seventh=latest.requires_seventh,
            manifestation=_is_manifestation(descriptions, code_first),
            current=any(r.active for r in holding),
            releases=tuple((r.effective_from, r.effective_to) for r in holding),
            excludes1=excludes1_index(ranges))
    return facts


def suggest_codes(conn: Connection, texts: Sequence[str]) -> dict[str, list[dict]]:
    """Free clinical text -> up to three ranked codes each, with a confidence in [0, 1]."""
    out: dict[str, list[dict]] = {t: [] for t in texts}
    for row in conn.execute(_SUGGEST_SQL, {"texts": list(texts)}):
        out[row.q].append({"code": row.dotted, "description": row.description,
                           "confidence": round(min(1.0, float(row.score) * 2), 3)})
    return out
