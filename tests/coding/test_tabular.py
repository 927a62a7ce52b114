"""Tests for coding.tabular against the CDC FY2026 April 1 tabular list shipped with simple-icd-10-cm."""

from __future__ import annotations

import time
from datetime import date
from importlib.util import find_spec
from pathlib import Path

import pytest

from coding.tabular import (
    CodeRow,
    Release,
    ReleaseFormatError,
    dotted,
    normalize_code,
    note_matches,
    parse_note_ranges,
    parse_release,
)

_SPEC = find_spec("simple_icd_10_cm")  # locate without importing: the package parses its XML on import
assert _SPEC is not None and _SPEC.submodule_search_locations
DATA = Path(next(iter(_SPEC.submodule_search_locations))) / "data"
XML = DATA / "icd10c-tabular-April-1-2026.xml"
CODE_LIST = DATA / "code-list-April-2026.txt"

# CDC/CMS communicate FY2026 as 74,719 codes (74,260 in FY2025 + 487 new - 28 deleted); the package's
# own code list has exactly that many leaves, so this is the count the data supports.
BILLABLE_FY2026_APRIL = 74_719

MINI = """<?xml version="1.0" encoding="utf-8"?>
<ICD10CM.tabular>
  <version>{version}</version>
  <chapter>
    <name>19</name>
    <desc>Injury (S00-T88)</desc>
    <excludes2><note>birth trauma (P10-P15)</note></excludes2>
    <sectionIndex>
      <sectionRef first="S00" last="S09" id="S00-S09">Injuries to the head</sectionRef>
    </sectionIndex>
    <section id="S00-S09">
      <desc>Injuries to the head (S00-S09)</desc>
      <diag>
        <name>S01</name>
        <desc>Open wound of head</desc>
        <excludes1><note>open skull fracture (S02.- with 7th character B)</note></excludes1>
        <sevenChrDef>
          <extension char="A">initial encounter</extension>
          <extension char="D">subsequent encounter</extension>
        </sevenChrDef>
        <diag><name>S01.0</name><desc>Open wound of scalp</desc></diag>
        <diag><name>S01.12</name><desc>Laceration of eyelid</desc>
          <diag><name>S01.121</name><desc>Laceration of right eyelid</desc>
            <sevenChrDef><extension char="S">sequela</extension></sevenChrDef>
          </diag>
        </diag>
        <diag><name>S01.1234A</name><desc>Already seven characters</desc></diag>
      </diag>
    </section>
  </chapter>
</ICD10CM.tabular>
"""


@pytest.fixture(scope="module")
def release() -> Release:
    return parse_release(XML)


@pytest.fixture(scope="module")
def by_code(release: Release) -> dict[str, CodeRow]:
    return {row.code: row for row in release.codes}


def _official_codes() -> set[str]:
    lines = (line.strip() for line in CODE_LIST.read_text().splitlines())
    return {line for line in lines if line and not line.isdigit() and "-" not in line}


def _mini(tmp_path: Path, name: str = "mini-tabular.xml", version: str = "2026") -> Path:
    path = tmp_path / name
    path.write_text(MINI.format(version=version), encoding="utf-8")
    return path


# --- whole release ---------------------------------------------------------------------------------


def test_parse_is_fast() -> None:
    start = time.perf_counter()
    parse_release(XML)
    assert time.perf_counter() - start < 5


def test_code_set_equals_official_code_list(release: Release) -> None:
    parsed = [row.code for row in release.codes]
    assert len(parsed) == len(set(parsed)), "duplicate codes"
    official = _official_codes()
    missing, extra = sorted(official - set(parsed)), sorted(set(parsed) - official)
    assert not missing and not extra, (
        f"missing {len(missing)} e.g. {missing[:8]}; extra {len(extra)} e.g. {extra[:8]}"
    )


def test_billable_count(release: Release) -> None:
    billable = {row.code for row in release.codes if row.billable}
    official = sorted(_official_codes())
    leaves = {c for c, nxt in zip(official, [*official[1:], ""], strict=True) if not nxt.startswith(c)}
    assert billable == leaves
    assert len(billable) == BILLABLE_FY2026_APRIL


def test_release_info(release: Release) -> None:
    info = release.info
    assert (info.name, info.fiscal_year) == ("FY2026 April update", 2026)
    assert (info.effective_from, info.effective_to) == (date(2026, 4, 1), date(2026, 9, 30))
    assert len(info.checksum) == 64 and int(info.checksum, 16)


def test_chapters(release: Release) -> None:
    ranges = [(c.number, c.first, c.last) for c in release.chapters]
    assert ranges == [
        (1, "A00", "B99"), (2, "C00", "D49"), (3, "D50", "D89"), (4, "E00", "E89"), (5, "F01", "F99"),
        (6, "G00", "G99"), (7, "H00", "H59"), (8, "H60", "H95"), (9, "I00", "I99"), (10, "J00", "J99"),
        (11, "K00", "K95"), (12, "L00", "L99"), (13, "M00", "M99"), (14, "N00", "N99"), (15, "O00", "O9A"),
        (16, "P00", "P96"), (17, "Q00", "QA0"), (18, "R00", "R99"), (19, "S00", "T88"), (20, "V00", "Y99"),
        (21, "Z00", "Z99"), (22, "U00", "U85"),
    ]
    assert release.chapters[0].description == "Certain infectious and parasitic diseases"


def test_blocks_and_notes(release: Release, by_code: dict[str, CodeRow]) -> None:
    blocks = {b.id: b for b in release.blocks}
    assert len(blocks) == len(release.blocks) == 297
    assert blocks["A00-A09"].description == "Intestinal infectious diseases"
    assert (blocks["B10"].first, blocks["B10"].last, blocks["B10"].chapter) == ("B10", "B10", 1)
    assert blocks["C00-C96"].chapter == 2  # header section without codes
    assert by_code["E119"].block == "E08-E13"
    z22 = [n for n in release.chapter_notes[1]["excludes2"] if "Z22" in n.text]
    assert z22 and z22[0].ranges == (("Z22", "Z22"),)
    assert release.block_notes["M00-M25"]["includes"]


# --- individual codes ------------------------------------------------------------------------------


def test_e119(by_code: dict[str, CodeRow]) -> None:
    row = by_code["E119"]
    assert row.billable and row.dotted == "E11.9"
    assert row.description == "Type 2 diabetes mellitus without complications"
    assert (row.parent, row.ancestors, row.depth, row.chapter) == ("E11", ("E11",), 2, 4)
    assert not row.requires_seventh and row.seven_char == {}


def test_seventh_character_expansion(by_code: dict[str, CodeRow]) -> None:
    base, code = by_code["S52501"], by_code["S52501A"]
    assert not base.billable and base.requires_seventh
    assert base.seven_char["A"] == "initial encounter for closed fracture" and len(base.seven_char) == 16
    assert code.billable and not code.requires_seventh and code.dotted == "S52.501A"
    assert code.parent == "S52501" and code.ancestors == ("S52", "S525", "S5250", "S52501")
    assert code.depth == base.depth + 1 == 5
    assert code.description == f"{base.description}, initial encounter for closed fracture"
    assert code.seven_char == {"A": "initial encounter for closed fracture"}
    assert by_code["S52"].seven_char == base.seven_char  # categories under a sevenChrDef carry it too


def test_placeholder_padding(by_code: dict[str, CodeRow]) -> None:
    row = by_code["T360X1A"]
    assert row.billable and row.dotted == "T36.0X1A" and row.parent == "T360X1"
    assert by_code["S0300XA"].parent == "S0300"  # 5-character base padded with one X
    assert by_code["T07XXXA"].parent == "T07"  # 3-character base padded with three X


def test_s06_death_codes_have_only_initial_encounter(by_code: dict[str, CodeRow]) -> None:
    assert "S061X7A" in by_code and "S061X7D" not in by_code and "S061X7S" not in by_code
    assert by_code["S061X7"].seven_char == {"A": "initial encounter"}
    assert {"S061X1A", "S061X1D", "S061X1S"} <= by_code.keys()


def test_g35_not_billable(by_code: dict[str, CodeRow]) -> None:
    assert not by_code["G35"].billable
    assert by_code["G35A"].billable and by_code["G35A"].parent == "G35"
    assert "G35B0" in by_code and by_code["G35B0"].ancestors == ("G35", "G35B")


def test_m5450_billable(by_code: dict[str, CodeRow]) -> None:
    assert by_code["M5450"].billable and by_code["M5450"].dotted == "M54.50"
    assert not by_code["M545"].billable


def test_own_notes_only(by_code: dict[str, CodeRow]) -> None:
    row = by_code["A001"]
    assert row.inclusion_terms == ("Cholera eltor",) and row.excludes1 == ()
    g35a = by_code["G35A"]
    assert g35a.excludes1[0].ranges == (("G379", "G379"),)


# --- helpers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("carrier (Z22.-)", (("Z22", "Z22"),)),
        ("perinatal (P35-P39)", (("P35", "P39"),)),
        ("(T81.44-)", (("T8144", "T8144"),)),
        ("(O03.37, O03.87, O04.87)", (("O0337", "O0337"), ("O0387", "O0387"), ("O0487", "O0487"))),
        ("(A15.0-A15.9)", (("A150", "A159"),)),
        ("(D3A.-)", (("D3A", "D3A"),)),
        ("malignant neoplasms (C00-C96)", (("C00", "C96"),)),
        ("(I01.0 -I01.9)", (("I010", "I019"),)),
        ("(S00 - S09)", (("S00", "S09"),)),
        ("(F10.-F19.-)", (("F10", "F19"),)),
        ("(S32.1--S32.9 with 7th character B)", (("S321", "S329", "7:B"),)),
        ("subcategories S06.1- to S06.6-", (("S061", "S066"),)),
        ("(I60.-. I61.-)", (("I60", "I60"), ("I61", "I61"))),
        ("(E08-E09 with .51-.52)", (("E0851", "E0852"), ("E0951", "E0952"))),
        ("(E08, E11 with final characters .00 or .01)",
         (("E0800", "E0800"), ("E0801", "E0801"), ("E1100", "E1100"), ("E1101", "E1101"))),
        ("vitamin B12 deficiency (E53.8)", (("E538", "E538"),)),
        ("COVID-19 (U07.1); influenza A/H1N1 (J10.-); G6PD", (("U071", "U071"), ("J10", "J10"))),
        ("certain localized infections - see body system-related chapters NOS", ()),
    ],
)
def test_parse_note_ranges(text: str, expected: tuple[tuple[str, str], ...]) -> None:
    assert parse_note_ranges(text) == expected


def test_note_matches() -> None:
    z22 = parse_note_ranges("(Z22.-)")
    assert note_matches(z22, "Z22") and note_matches(z22, "Z22.322") and note_matches(z22, "z229")
    assert not note_matches(z22, "Z21") and not note_matches(z22, "Z23")
    block = parse_note_ranges("(P35-P39)")
    assert note_matches(block, "P35.0") and note_matches(block, "P39.9") and not note_matches(block, "P40")
    sub = parse_note_ranges("(A15.0-A15.9)")
    assert note_matches(sub, "A15.0") and note_matches(sub, "A15.9") and not note_matches(sub, "A16.0")
    assert not note_matches(sub, "A15")  # the category itself is broader than the range
    assert note_matches(parse_note_ranges("(T81.44-)"), "T81.44XA")
    assert not note_matches((), "A00")


def test_normalize_and_dotted() -> None:
    assert normalize_code(" e11.9 ") == "E119"
    assert normalize_code("s52.501a") == "S52501A"
    assert dotted("E119") == "E11.9" and dotted("A00") == "A00" and dotted("T360X1A") == "T36.0X1A"
    assert dotted("e11.9") == "E11.9"


# --- small synthetic releases ----------------------------------------------------------------------


def test_mini_release_expansion(tmp_path: Path) -> None:
    rel = parse_release(_mini(tmp_path))
    rows = {r.code: r for r in rel.codes}
    assert [r.code for r in rel.codes] == [
        "S01", "S010", "S010XXA", "S010XXD", "S0112", "S01121", "S01121S", "S011234A",
    ]
    assert rows["S01121"].seven_char == {"S": "sequela"}  # own sevenChrDef beats the ancestor's
    assert rows["S011234A"].billable and not rows["S011234A"].requires_seventh  # already 7 characters
    assert rows["S010XXD"].description == "Open wound of scalp, subsequent encounter"
    assert rows["S01"].excludes1[0].ranges == (("S02", "S02", "7:B"),)  # open skull fracture only
    assert rel.chapter_notes[19]["excludes2"][0].ranges == (("P10", "P15"),)
    assert rel.blocks[0].description == "Injuries to the head"


@pytest.mark.parametrize(
    ("name", "version", "label", "start", "end"),
    [
        ("icd10cm-tabular-2026.xml", "2026", "FY2026", date(2025, 10, 1), date(2026, 9, 30)),
        ("icd10cm_tabular_2025.xml", "2025", "FY2025", date(2024, 10, 1), date(2025, 9, 30)),
        ("icd10cm-tabular-October-1-2025.xml", "2026", "FY2026", date(2025, 10, 1), date(2026, 9, 30)),
        ("icd10c-tabular-April-1-2025.xml", "2025", "FY2025 April update", date(2025, 4, 1),
         date(2025, 9, 30)),
        ("tabular.xml", "2024", "FY2024", date(2023, 10, 1), date(2024, 9, 30)),
    ],
)
def test_release_info_from_file_name(
    tmp_path: Path, name: str, version: str, label: str, start: date, end: date
) -> None:
    info = parse_release(_mini(tmp_path, name, version)).info
    assert (info.name, info.effective_from, info.effective_to) == (label, start, end)


# --- errors ----------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ReleaseFormatError, match="file not found"):
        parse_release(tmp_path / "nope.xml")


def test_not_xml(tmp_path: Path) -> None:
    path = tmp_path / "codes.xml"
    path.write_text("A00\tCholera\nsecret-looking content\n")
    with pytest.raises(ReleaseFormatError, match=r"XML syntax error at line 1") as err:
        parse_release(path)
    assert "secret" not in str(err.value)


def test_other_root(tmp_path: Path) -> None:
    path = tmp_path / "other.xml"
    path.write_text("<?xml version='1.0'?><ICD10PCS.tabular><version>2026</version></ICD10PCS.tabular>")
    with pytest.raises(ReleaseFormatError, match=r"root element is <ICD10PCS.tabular>"):
        parse_release(path)


def test_truncated_real_file(tmp_path: Path) -> None:
    path = tmp_path / "icd10c-tabular-April-1-2026.xml"
    path.write_bytes(XML.read_bytes()[:3_000_000])
    with pytest.raises(ReleaseFormatError, match="XML syntax error") as err:
        parse_release(path)
    assert len(str(err.value)) < 200


def test_no_chapters(tmp_path: Path) -> None:
    path = tmp_path / "empty.xml"
    path.write_text("<ICD10CM.tabular><version>2026</version></ICD10CM.tabular>")
    with pytest.raises(ReleaseFormatError, match="no chapters found"):
        parse_release(path)


def test_no_codes(tmp_path: Path) -> None:
    path = tmp_path / "nocodes.xml"
    path.write_text("<ICD10CM.tabular><version>2026</version><chapter><name>1</name><desc>X (A00-B99)</desc>"
                    "</chapter></ICD10CM.tabular>")
    with pytest.raises(ReleaseFormatError, match="no codes found"):
        parse_release(path)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ReleaseFormatError, match="cannot read"):
        parse_release(tmp_path)


@pytest.mark.parametrize(("note", "ranges"), [
    ("fluency disorder (stuttering) following cerebrovascular disease (I69. with final characters -23)",
     (("I69", "I69", "$23"),)),
    ("roller-skater collision with other land transport vehicle (V01-V09 with 5th character 1)",
     (("V01", "V09", "5:1"),)),
    ("whooping cough with pneumonia (A37 with fifth-character 1)", (("A37", "A37", "5:1"),)),
    ("hallucinations in drug psychosis (F11-F19 with fifth to sixth characters 51)", (("F11", "F19", "5-6:51"),)),
    ("poisoning and toxic effects of drugs and chemicals (T36-T65 with fifth or sixth character 1-4 or 6)",
     (("T36", "T65", "56:12346"),)),
    ("open fracture of shoulder and upper arm (S42.- with 7th character B or C)", (("S42", "S42", "7:BC"),)),
    ("open fracture of elbow and forearm (S52.- with open fracture 7th character)",
     (("S52", "S52", "7:BCEFHJMNQR"),)),
])
def test_character_position_qualifiers_are_parsed(note, ranges):
    assert parse_note_ranges(note) == ranges


def test_a_qualified_range_matches_only_codes_meeting_it():
    stutter = parse_note_ranges("(I69. with final characters -23)")
    assert note_matches(stutter, "I69.323") and not note_matches(stutter, "I69.391")
    poisoning = parse_note_ranges("(T36-T65 with fifth or sixth character 1-4 or 6)")
    assert note_matches(poisoning, "T36.0X1A") and note_matches(poisoning, "T41.41XA")
    assert not note_matches(poisoning, "T36.0X5A") and not note_matches(poisoning, "T41.45XA")
    fractures = parse_note_ranges("(S42.- with 7th character B or C)")
    assert note_matches(fractures, "S42.001B") and not note_matches(fractures, "S42.001A")
