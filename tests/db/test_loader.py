"""The bundled April 2026 release in the partitioned code table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import text

from coding.tabular import ReleaseFormatError
from db.loader import ReleaseConflict, bundled_release_path, load_release


def _scalar(conn, sql: str, **params):
    return conn.execute(text(sql), params).scalar()


def test_bundled_release_has_the_official_billable_count(conn):
    assert _scalar(conn, "SELECT count(*) FROM icd_codes WHERE active AND billable") == 74_719
    assert _scalar(conn, "SELECT billable FROM releases WHERE name = (SELECT r.name FROM releases r "
                         "JOIN icd_codes c ON c.release_id = r.id WHERE c.active LIMIT 1)") == 74_719


@pytest.mark.parametrize(("code", "billable", "description"), [
    ("E119", True, "Type 2 diabetes mellitus without complications"),
    ("S52501A", True, None),
    ("S52501", False, None),
    ("G35", False, None),
    ("M5450", True, None),
    ("E11", False, "Type 2 diabetes mellitus"),
])
def test_known_codes(conn, code, billable, description):
    row = conn.execute(text("SELECT billable, description, dotted FROM icd_codes WHERE code = :c AND active"),
                       {"c": code}).one()
    assert row.billable is billable
    if description:
        assert row.description == description


def test_every_category_and_subcategory_is_a_non_billable_row(conn):
    orphans = _scalar(conn, """SELECT count(*) FROM icd_codes c WHERE c.active AND c.parent IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM icd_codes p WHERE p.code = c.parent AND p.release_id = c.release_id)""")
    assert orphans == 0
    billable_parents = _scalar(conn, """SELECT count(*) FROM icd_codes p WHERE p.active AND p.billable
        AND EXISTS (SELECT 1 FROM icd_codes c WHERE c.parent = p.code AND c.release_id = p.release_id)""")
    assert billable_parents == 0


def test_every_chapter_partition_holds_its_own_chapter(conn):
    rows = conn.execute(text("""SELECT tableoid::regclass::text AS part, array_agg(DISTINCT chapter) AS chapters
        FROM icd_codes WHERE active GROUP BY 1 ORDER BY 1""")).all()
    assert len(rows) == 22
    for row in rows:
        assert row.chapters == [int(row.part.removeprefix("icd_codes_ch"))]


def test_a_code_lookup_plans_onto_exactly_one_partition(conn):
    plan = "\n".join(r[0] for r in conn.execute(text(
        "EXPLAIN SELECT * FROM icd_codes WHERE code = 'E119' AND active")))
    assert set(re.findall(r"icd_codes_ch\d\d", plan)) == {"icd_codes_ch04"}


def test_reloading_the_same_release_changes_nothing(conn):
    before = conn.execute(text("SELECT count(*), max(loaded_at) FROM releases")).one()
    codes = _scalar(conn, "SELECT count(*) FROM icd_codes")
    result = load_release(conn, bundled_release_path())
    assert result.created is False
    assert conn.execute(text("SELECT count(*), max(loaded_at) FROM releases")).one() == before
    assert _scalar(conn, "SELECT count(*) FROM icd_codes") == codes


def _variant(tmp_path: Path, name: str, edit) -> Path:
    target = tmp_path / name
    target.write_text(edit(bundled_release_path().read_text(encoding="utf-8")), encoding="utf-8")
    return target


def test_an_earlier_release_is_added_beside_with_its_own_dates(conn, tmp_path):
    # The October 2025 release of FY2026, simulated: the same tabular without one April addition.
    october = _variant(tmp_path, "icd10cm-tabular-2026.xml",
                       lambda xml: xml.replace("<name>M54.50</name>", "<name>M54.5X</name>", 1))
    result = load_release(conn, october)
    assert result.created and result.replaced_active is None
    rows = conn.execute(text("SELECT name, effective_from, effective_to FROM releases ORDER BY effective_from")).all()
    assert [(str(r.effective_from), str(r.effective_to)) for r in rows] == [
        ("2025-10-01", "2026-03-31"), ("2026-04-01", "2026-09-30")]
    # the active release stays the newest one
    assert _scalar(conn, "SELECT count(*) FROM icd_codes WHERE active AND billable") == 74_719
    assert _scalar(conn, "SELECT count(DISTINCT release_id) FROM icd_codes WHERE code = 'M545X'") == 1


@pytest.mark.parametrize("content", [
    "not xml at all",
    "<?xml version='1.0'?><catalog><book/></catalog>",
])
def test_a_bad_release_file_leaves_the_database_unchanged(conn, tmp_path, content):
    bad = tmp_path / "bad.xml"
    bad.write_text(content)
    before = _scalar(conn, "SELECT count(*) FROM icd_codes")
    with pytest.raises(ReleaseFormatError):
        load_release(conn, bad)
    assert _scalar(conn, "SELECT count(*) FROM icd_codes") == before


def test_a_truncated_release_file_is_refused(conn, tmp_path):
    truncated = _variant(tmp_path, "icd10cm-tabular-2027.xml", lambda xml: xml[: len(xml) // 2])
    with pytest.raises(ReleaseFormatError):
        load_release(conn, truncated)
    assert _scalar(conn, "SELECT count(*) FROM releases") == 1


def test_another_file_under_a_loaded_release_name_is_refused(conn, tmp_path):
    edited = _variant(tmp_path, "icd10c-tabular-April-1-2026.xml",
                      lambda xml: xml.replace("Cholera, unspecified", "Cholera, unspecified!", 1))
    with pytest.raises(ReleaseConflict):
        load_release(conn, edited)
