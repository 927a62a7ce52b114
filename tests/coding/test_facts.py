"""The claim facts the loader stores agree with what the engine's lookup derives for the same codes."""

from __future__ import annotations

import orjson
from sqlalchemy import text

from coding.lookup import resolve_codes
from db.loader import backfill_claim_facts

SAMPLE = """SELECT code, claim_facts::text AS facts FROM icd_codes
            WHERE active AND (md5(code) < '18' OR code IN ('F0280', 'K5090', 'E119', 'S52501A', 'G309'))"""


def test_claim_facts_agree_with_the_engines_conventions(conn):
    stored = {r.code: orjson.loads(r.facts) for r in conn.execute(text(SAMPLE))}
    infos = resolve_codes(conn, None, list(stored), write_back=False)
    for code, facts in stored.items():
        info = infos[code]
        assert {tuple(r) for r in facts["x"]} == {tuple(r) for r in info.excludes1_ranges if r[0] and r[1]}, code
        titles = [info.description, *(p["description"] for p in info.parents)]
        manifestation = (any("classified elsewhere" in t.lower() for t in titles)
                         and any(code.startswith(note["from"]) for note in info.code_first))
        assert facts["m"] is manifestation, code
    assert len(stored) > 5_000
    assert stored["F0280"]["m"] and not stored["G309"]["m"]
    assert ["K51", "K51"] in stored["K5090"]["x"]  # the category's own note, inherited
    assert ["P70", "P74"] in stored["E119"]["x"]  # the chapter's note, inherited
    assert sum(1 for f in stored.values() if f["m"]) > 20


def test_backfill_computes_what_the_loader_stored(conn):
    before = {r.code: r.facts for r in conn.execute(text(SAMPLE))}
    conn.execute(text("UPDATE icd_codes SET claim_facts = NULL WHERE active"))
    assert backfill_claim_facts(conn) >= 98_186
    assert {r.code: r.facts for r in conn.execute(text(SAMPLE))} == before
    assert conn.execute(text("SELECT count(*) FROM icd_codes WHERE claim_facts IS NULL")).scalar() == 0
