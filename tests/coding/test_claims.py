"""Every edit kind, coded directly (no queue) against the real code table."""

from __future__ import annotations

from itertools import chain

import orjson
import pytest

from coding.claim_csv import (
    MAX_RECORD_SPAN,
    HeaderError,
    chunk_records,
    data_batches,
    parse_header,
    record_batches,
)
from coding.claim_lookup import resolve_facts, suggest_codes
from coding.claims import code_records

HEADER = "claim_id,sex,age,service_date,dx1,dx2,dx3"


def code(conn, *lines: str, header: str = HEADER) -> list[dict]:
    rows, _ = code_records(parse_header(header), 1, list(lines), lambda c: resolve_facts(conn, c),
                           lambda texts: suggest_codes(conn, None, texts))
    return [orjson.loads(record) for record in rows]


def edits(record: dict) -> set[str]:
    return {e["edit"] for e in record["edits"]}


@pytest.mark.parametrize(("line", "edit", "status"), [
    ("A,M,40,2026-05-01,XYZ,I10,", "INVALID_CODE", "error"),
    ("A,M,40,2026-05-01,E11,I10,", "NOT_BILLABLE", "error"),
    ("A,M,40,2026-05-01,S52.501,,", "MISSING_7TH_CHARACTER", "error"),
    ("A,M,40,2026-05-01,K50.90,K51.90,", "EXCLUDES1_CONFLICT", "error"),
    ("A,M,70,2026-05-01,F02.80,G30.9,", "MANIFESTATION_FIRST", "error"),
    ("A,M,40,2026-05-01,W19.XXXA,S72.001A,", "EXTERNAL_CAUSE_FIRST", "error"),
    ("A,M,40,2026-05-01,I10,E11.9,i10", "DUPLICATE_CODE", "warning"),
    ("A,F,40,2026-05-01,N40.0,,", "SEX_CONFLICT", "error"),
    ("A,M,30,2026-05-01,O80,,", "SEX_CONFLICT", "error"),
    ("A,F,71,2026-05-01,O80,,", "AGE_CONFLICT", "warning"),
    ("A,M,45,2026-05-01,P07.30,,", "AGE_CONFLICT", "warning"),
    ("A,M,40,2026-05-01,,,", "NO_DIAGNOSIS", "error"),
    ("A,M,40,2019-05-01,E11.9,,", "CODE_NOT_EFFECTIVE", "error"),
    ("A,M,40,2026-05-01,I10", "MALFORMED_LINE", "error"),
    ("A,M,forty,2026-05-01,I10,,", "MALFORMED_LINE", "error"),
])
def test_each_edit(conn, line, edit, status):
    [record] = code(conn, line)
    assert edit in edits(record)
    assert record["status"] == status
    assert all(e["message"] for e in record["edits"])


def test_a_clean_line_is_ok_with_dotted_codes(conn):
    [record] = code(conn, "A,F,40,2026-05-01,e119,I10,Z79.4")
    assert record["status"] == "ok" and record["edits"] == []
    assert [d["code"] for d in record["diagnoses"]] == ["E11.9", "I10", "Z79.4"]
    assert all(d["valid"] and d["billable"] and d["description"] for d in record["diagnoses"])


def test_excludes1_naming_a_character_position_flags_only_codes_meeting_it(conn):
    # R47.82 excludes "fluency disorder following cerebrovascular disease (I69. with final characters -23)"
    stutter, dysphagia = code(conn, "A,M,70,2026-05-01,I69.323,R47.82,", "B,M,70,2026-05-01,I69.391,R47.82,")
    assert edits(stutter) == {"EXCLUDES1_CONFLICT"} and stutter["status"] == "error"
    assert edits(dysphagia) == set() and dysphagia["status"] == "ok"


def test_the_same_pair_in_either_order_and_only_once(conn):
    [one, two] = code(conn, "A,M,40,,K51.90,K50.90,", "B,M,40,,K50.90,K51.90,K50.90")
    assert [e["edit"] for e in one["edits"]] == ["EXCLUDES1_CONFLICT"]
    assert sorted(e["edit"] for e in two["edits"]) == ["DUPLICATE_CODE", "EXCLUDES1_CONFLICT"]


def test_a_who_only_code_is_invalid_and_says_it_is_who_icd10(conn):
    [record] = code(conn, "A,M,60,2026-05-01,E14.9,I10,")
    [edit] = record["edits"]
    assert edit["edit"] == "INVALID_CODE" and edit["codes"] == ["E14.9"]
    assert "WHO ICD-10 code" in edit["message"] and "ICD-10-CM" in edit["message"]
    assert record["status"] == "error" and record["diagnoses"][0]["valid"] is False


def test_dx_text_gets_the_engines_suggestions(conn):
    [record] = code(conn, "A,M,60,2026-05-01,I10,type 2 diabetes",
                    header="claim_id,sex,age,service_date,dx1,dx_text")
    assert record["suggestions"][0]["code"] == "E11.9"
    assert all(0 <= s["confidence"] <= 1 for s in record["suggestions"])


def test_only_true_manifestations_must_not_come_first(conn):
    # Poisoning and burn codes inherit "code first" notes but are not manifestation codes.
    [poisoning, burn, dementia] = code(conn, "A,M,40,2026-05-01,T49.5X4A,,", "B,M,40,2026-05-01,T24.522D,,",
                                       "C,M,70,2026-05-01,F02.80,G30.9,")
    assert "MANIFESTATION_FIRST" not in edits(poisoning) | edits(burn)
    assert "MANIFESTATION_FIRST" in edits(dementia)


def test_fy2026_codes_with_a_letter_second_are_found(conn):
    [record] = code(conn, "A,M,40,2026-05-01,QA0.8,,")
    assert "INVALID_CODE" not in edits(record)
    assert record["diagnoses"][0]["code"] == "QA0.8" and record["diagnoses"][0]["valid"]


def test_no_sex_or_age_means_no_sex_or_age_edit(conn):
    [record] = code(conn, "A,,,,O80,Z3A.39,")
    assert record["status"] == "ok"


def test_quoted_fields_with_commas_and_newlines_are_one_record():
    batches = [['A,"I10, the'], ['second line",E119', "B,I10,", "", "  "], [], ['C,"x,I10'], ["D,I10"]]
    records = list(chain.from_iterable(record_batches(batches)))
    # A quote still open at the end of the file gives its lines back one by one (each then malformed).
    assert records == ['A,"I10, the\nsecond line",E119', "B,I10,", 'C,"x,I10', "D,I10"]


def test_a_stray_quote_swallows_at_most_max_record_span_lines():
    lines = ['A,"I10'] + [f"B{i},I10" for i in range(30)]
    records = list(chain.from_iterable(record_batches([lines[:7], lines[7:]])))
    assert records[:MAX_RECORD_SPAN] == lines[:MAX_RECORD_SPAN]  # given back one by one: malformed, then fine
    assert records == lines


def test_a_file_is_cut_into_chunks_of_records_after_its_header():
    text = "claim_id,dx1\r\n" + "".join(f"C{i},I10\r\n" for i in range(25)) + "\nC25,E119"
    data = ("\ufeff" + text).encode()
    pieces = [data[i:i + 7] for i in range(0, len(data), 7)]  # pieces end inside lines and characters
    chunks = list(chunk_records(data_batches(pieces), 10))
    assert [(n, first, len(records)) for n, first, records in chunks] == [(0, 1, 10), (1, 11, 10), (2, 21, 6)]
    assert [r for _, _, records in chunks for r in records] == [f"C{i},I10" for i in range(25)] + ["C25,E119"]


@pytest.mark.parametrize(("header", "code"), [
    ("dx1,dx2", "MISSING_CLAIM_ID"), ("claim_id,sex", "NO_DIAGNOSIS_COLUMN"),
    ("claim_id,dx1,DX1", "DUPLICATE_COLUMN"), ("claim_id,dx26", "TOO_MANY_DIAGNOSES"), ("", "EMPTY_FILE"),
])
def test_header_problems(header, code):
    with pytest.raises(HeaderError) as err:
        parse_header(header)
    assert err.value.code == code


def test_header_variants():
    layout = parse_header("Claim_ID, Diagnosis_2 ,diagnosis_1,SEX,dx_text")
    assert [pos for pos, _ in layout.dx] == [1, 2] and layout.dx[0][1] == 2
    assert layout.sex == 3 and layout.dx_text == 4 and layout.age is None


def test_a_thread_resolving_codes_another_is_still_fetching_gets_them_all(conn, database_url, monkeypatch):
    import threading

    from coding import claim_lookup
    from db.engine import get_engine

    memo = claim_lookup.FactsMemo()
    fetching, go_on = threading.Event(), threading.Event()
    real_fetch = claim_lookup.fetch_claim_rows

    def slow_for_the_first(connection, codes):
        if threading.current_thread().name == "first":
            fetching.set()
            go_on.wait(10)
        return real_fetch(connection, codes)

    monkeypatch.setattr(claim_lookup, "fetch_claim_rows", slow_for_the_first)
    answers = {}

    def first() -> None:
        with get_engine(database_url).connect() as own:
            answers["first"] = memo.lookup(own, ["E119", "I10"])

    thread = threading.Thread(target=first, name="first")
    thread.start()
    assert fetching.wait(10)
    answers["second"] = memo.lookup(conn, ["E119", "I10"])  # while the first is still fetching
    go_on.set()
    thread.join(10)
    assert set(answers["second"]) == set(answers["first"]) == {"E119", "I10"}


def test_a_thread_starting_the_memo_afresh_never_leaves_another_without_categories(conn, database_url,
                                                                                  monkeypatch):
    """While one thread is still reading the categories for a new memo, another resolving codes must
    not build facts with none (their Excludes1 prefilter would then hide every conflict)."""
    import threading

    from coding import claim_lookup
    from coding.claims import _may_conflict
    from db.engine import get_engine

    memo = claim_lookup.FactsMemo()
    reading, go_on = threading.Event(), threading.Event()
    real_categories = claim_lookup.categories

    def slow_for_the_first(connection):
        if threading.current_thread().name == "first":
            reading.set()
            go_on.wait(10)
        return real_categories(connection)

    monkeypatch.setattr(claim_lookup, "categories", slow_for_the_first)

    def first() -> None:
        with get_engine(database_url).connect() as own:
            memo.lookup(own, ["I10"])

    thread = threading.Thread(target=first, name="first")
    thread.start()
    assert reading.wait(10)
    found = memo.lookup(conn, ["E133311", "E119"])  # while the first is still reading categories
    go_on.set()
    thread.join(10)
    assert _may_conflict([found["E133311"], found["E119"]])  # E13's Excludes1 names E11


def test_the_category_prefilter_never_hides_an_excludes1_conflict(conn):
    """Lines skip the pair checks when no code's Excludes1 categories meet another code's category;
    for codes at the edges of every range (where a category test would go wrong first) and random
    partners, each pair the full check flags is also let through by the prefilter."""
    import random
    from bisect import bisect_left

    from sqlalchemy import text

    from coding.claims import _conflicts, _may_conflict

    sample = list(conn.execute(text("SELECT code FROM icd_codes WHERE active AND billable "
                                    "AND claim_facts::text LIKE '%\"x\":[[%' ORDER BY md5(code) LIMIT 400")).scalars())
    facts = resolve_facts(conn, sample)
    edges = {c for f in facts.values() for ranges in f.excludes1.values() for r in ranges for c in r[:2]}
    everything = sorted(conn.execute(text("SELECT code FROM icd_codes WHERE active AND billable")).scalars())
    near = set()
    for edge in edges:  # the first and last few codes under each range end
        under = everything[bisect_left(everything, edge):bisect_left(everything, edge + "~")]
        near.update(under[:3] + under[-3:])
    partners = resolve_facts(conn, near | set(random.Random(3).sample(everything, 2000)))
    flagged = checked = 0
    for a in facts.values():
        for b in partners.values():
            if b.code == a.code or not (b.code[0] in a.excludes1 or a.code[0] in b.excludes1):
                continue
            edits: list = []
            _conflicts([a, b], edits)
            checked += 1
            if edits:
                flagged += 1
                assert _may_conflict([a, b]), (a.code, b.code)
    assert flagged > 100 and checked > flagged
    a = facts[sample[0]]
    apart = next(partners[c] for c in sorted(partners)  # neither code's Excludes1 reaches the other's letter
                 if c[0] not in a.excludes1 and a.code[0] not in partners[c].excludes1)
    assert not _may_conflict([a, apart])


def test_cells_are_normalized_together_as_one_by_one():
    from coding.claims import cell_codes, normalize

    plain = ["e11.9", "I10", "s52.501a", "Z3A.39", "QA0.8"]
    assert cell_codes(plain) == {c: normalize(c) for c in plain} == {
        "e11.9": "E119", "I10": "I10", "s52.501a": "S52501A", "Z3A.39": "Z3A39", "QA0.8": "QA08"}
    odd = ["E11 .9", "I10", "J18\n.9", "k21.9\t"]  # whitespace and a line break inside (quoted cells)
    assert cell_codes(odd) == {c: normalize(c) for c in odd}
    assert cell_codes(odd)["J18\n.9"] == "J189" and cell_codes([]) == {}


def test_warming_builds_every_billable_code_so_chunks_fetch_none(conn, monkeypatch):
    """What a worker does before forking its pool: afterwards a chunk of billable codes needs no query."""
    from sqlalchemy import text

    from coding import claim_lookup

    monkeypatch.setattr(claim_lookup, "_memo", claim_lookup.FactsMemo())
    billable = conn.execute(text("SELECT count(*) FROM icd_codes WHERE active AND billable")).scalar()
    assert claim_lookup.warm_facts(conn) == billable > 70_000

    def no_query(*_):
        raise AssertionError("fetched facts the warm-up should have built")

    monkeypatch.setattr(claim_lookup, "fetch_claim_rows", no_query)
    found = claim_lookup.known_facts(conn, {"E119", "I10", "S52501A", "O80"})
    assert all(found[c].billable for c in ("E119", "I10", "S52501A", "O80"))
