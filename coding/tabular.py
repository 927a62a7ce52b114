"""Parser for the CDC ICD-10-CM tabular list XML (``icd10cm-tabular-*.xml``).

Pure Python, no I/O besides reading the one file. ``parse_release`` returns every
chapter, block (``<section>``) and code of a release, with 7th-character codes
expanded exactly like CDC's official code list (incl. the S06 "D and S do not apply" exception).

Note ranges: a code matches ``(lo, hi)`` iff ``code >= lo and code[:len(hi)] <= hi``. Qualifiers
like "(E08-E13 with .41)" are resolved to the listed endings; qualifiers by character position
("T36-T50 with fifth or sixth character 5", "S02.- with 7th character B") cannot be expressed as
ranges and are over-approximated by the whole referenced range.
"""

from __future__ import annotations

import calendar
import gc
import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

ROOT_TAG = "ICD10CM.tabular"
#: XML note element -> key used in ``chapter_notes`` / ``block_notes`` (and the ``CodeRow`` field names).
_NOTE_TAGS = {
    "includes": "includes",
    "inclusionTerm": "inclusion_terms",
    "excludes1": "excludes1",
    "excludes2": "excludes2",
    "codeFirst": "code_first",
    "useAdditionalCode": "use_additional",
    "codeAlso": "code_also",
    "notes": "notes",
}
NOTE_KINDS = tuple(_NOTE_TAGS.values())
_CODE = r"[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?"
# a code, optionally "-"/".-" (all descendants) or a range "A15.0-A15.9", "S00 - S09", "S06.1- to S06.6-"
_REF_RE = re.compile(
    rf"(?<![0-9A-Za-z.])(?<![Vv]itamin )(?P<lo>{_CODE})"
    rf"(?:(?:(?:\.?-{{1,2}}|\s+-)\s*|-?\s+to\s+)(?P<hi>{_CODE}))?(?:\.?-)?(?![0-9A-Za-z])"
)
# "(E08-E13 with .41)", "(E08, E09 with final characters .00 or .01)": categories + given endings
_SUFFIX_RE = re.compile(r"\bwith (?:final characters? )?(?=\.[0-9A-Z])(?P<tail>[^)]*)")
_SKIP_RE = re.compile(
    r"7th characters? (?P<chars>[A-Z](?:(?:,| and| or) [A-Z])*) do(?:es)? not apply to codes .*?"
    r"6th characters? (?P<sixth>.+)"
)
_TRAILING_RANGE_RE = re.compile(r"\s*\(([A-Z0-9.]+)-([A-Z0-9.]+)\)\s*$")
_MONTHS = {n.lower(): i for ns in (calendar.month_name, calendar.month_abbr) for i, n in enumerate(ns) if n}


class ReleaseFormatError(ValueError):
    """The file is not a readable ICD-10-CM tabular XML release."""


@dataclass(frozen=True)
class ReleaseInfo:
    name: str
    fiscal_year: int
    effective_from: date
    effective_to: date
    checksum: str


@dataclass(frozen=True)
class Chapter:
    number: int
    first: str
    last: str
    description: str


@dataclass(frozen=True)
class Block:
    id: str
    first: str
    last: str
    description: str
    chapter: int


@dataclass(frozen=True)
class Note:
    text: str
    ranges: tuple[tuple[str, ...], ...]  # (lo, hi) or (lo, hi, qualifier): see parse_note_ranges


@dataclass(frozen=True)
class CodeRow:
    code: str
    dotted: str
    description: str
    billable: bool
    chapter: int
    block: str
    parent: str | None
    ancestors: tuple[str, ...]
    depth: int
    inclusion_terms: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()
    excludes1: tuple[Note, ...] = ()
    excludes2: tuple[Note, ...] = ()
    code_first: tuple[Note, ...] = ()
    use_additional: tuple[Note, ...] = ()
    code_also: tuple[Note, ...] = ()
    seven_char: dict[str, str] = field(default_factory=dict)
    requires_seventh: bool = False


@dataclass
class Release:
    info: ReleaseInfo
    chapters: list[Chapter]
    blocks: list[Block]
    chapter_notes: dict[int, dict[str, tuple[Note, ...]]]
    block_notes: dict[str, dict[str, tuple[Note, ...]]]
    codes: list[CodeRow]


def normalize_code(text: str) -> str:
    """``" e11.9 "`` -> ``"E119"``: drop whitespace and dots, uppercase. No validation."""
    return "".join(text.split()).replace(".", "").upper()


def dotted(code: str) -> str:
    """``"E119"`` -> ``"E11.9"``; codes of three characters or fewer are returned unchanged."""
    code = normalize_code(code)
    return f"{code[:3]}.{code[3:]}" if len(code) > 3 else code


def parse_note_ranges(text: str) -> tuple[tuple[str, ...], ...]:
    """Code ranges referenced in a note, as normalized ``(lo, hi)`` pairs, or ``(lo, hi, qualifier)``
    when the note names a character position (see ``note_matches`` and ``qualifier_holds``).

    ``"Z22.-"`` -> ``("Z22", "Z22")``, ``"P35-P39"`` -> ``("P35", "P39")``,
    ``"(O03.37, O03.87)"`` -> two single-code ranges, ``"(V01-V09 with 5th character 1)"`` ->
    ``("V01", "V09", "5:1")``. Text that is not a code is ignored.
    """
    suffix = _SUFFIX_RE.search(text)
    qualified = None if suffix else _QUALIFIER_RE.search(text)
    qualifier = _qualifier(qualified) if qualified else None
    out: list[tuple[str, ...]] = []
    for m in _REF_RE.finditer(text):
        lo = normalize_code(m["lo"])
        hi = normalize_code(m["hi"] or lo)
        pairs: list[tuple[str, ...]] = [(lo, hi)]
        if suffix and m.start() < suffix.start():
            pairs = _with_suffixes(lo, hi, suffix["tail"])
        elif qualifier and qualified and m.start() < qualified.start():
            pairs = [(lo, hi, qualifier)]
        out.extend(p for p in pairs if p not in out)
    return tuple(out)


OPEN_FRACTURE_7TH = "BCEFHJMNQR"
_ORDINALS = {"fifth": 5, "5th": 5, "sixth": 6, "6th": 6, "seventh": 7, "7th": 7}
_ORDINAL = "(?:fifth|5th|sixth|6th|seventh|7th)"
# "with 5th character 1", "with fifth or sixth character 1-4 or 6", "with fifth-character 1",
# "with fifth to sixth characters 51", "with 7th character B or C", "with final characters -23"
_QUALIFIER_RE = re.compile(
    rf"\bwith (?:final characters? -(?P<final>[0-9A-Z]+)|(?P<open>open fracture 7th character)"
    rf"|(?P<first>{_ORDINAL})(?: (?P<join>or|to) (?P<second>{_ORDINAL}))?[ -]characters? \.?"
    rf"(?P<values>[0-9A-Z]+(?: ?- ?[0-9A-Z])?(?:(?:,| or) [0-9A-Z](?: ?- ?[0-9A-Z])?)*))(?![0-9A-Za-z])",
    re.IGNORECASE)


def _qualifier(m: re.Match) -> str | None:
    """A character-position condition as a short string: "5:1" (5th character is 1), "56:1234"
    (5th or 6th is one of 1-4), "5-6:51" (5th to 6th read "51"), "$23" (the code ends in 23)."""
    if m["final"]:
        return "$" + m["final"].upper()
    if m["open"]:  # the fracture 7th characters that mean an open fracture (B, C, E, F, H, J, M, N, Q, R)
        return "7:" + OPEN_FRACTURE_7TH
    first = _ORDINALS[m["first"].lower()]
    second = _ORDINALS[m["second"].lower()] if m["second"] else None
    values = m["values"].upper().replace(" ", "")
    if m["join"] == "to" and second:
        return f"{first}-{second}:{values}" if len(values) == second - first + 1 else None
    allowed: set[str] = set()
    for part in re.split(r",|OR", values):
        if re.fullmatch(r"[0-9A-Z]-[0-9A-Z]", part):
            allowed.update(chr(c) for c in range(ord(part[0]), ord(part[2]) + 1))
        elif len(part) == 1:
            allowed.add(part)
        else:
            return None  # not a condition we can read: the whole range is kept
    positions = f"{first}{second or ''}"
    return f"{positions}:{''.join(sorted(allowed))}"


def qualifier_holds(code: str, qualifier: str) -> bool:
    """Whether a normalized code meets a ``_qualifier`` condition."""
    if qualifier.startswith("$"):
        return code.endswith(qualifier[1:])
    positions, allowed = qualifier.split(":")
    if "-" in positions:
        start, end = (int(p) for p in positions.split("-"))
        return code[start - 1:end] == allowed
    return any(len(code) >= int(p) and code[int(p) - 1] in allowed for p in positions)


def _with_suffixes(lo: str, hi: str, tail: str) -> list[tuple[str, ...]]:
    """``("E08", "E13")`` + ``".51-.52"`` -> ``[("E0851", "E0852"), ..., ("E1351", "E1352")]``."""
    suffixes = re.findall(r"\.([0-9A-Z]{1,4})(?:-\.([0-9A-Z]{1,4}))?", tail)
    if not suffixes or len(lo) != 3 or len(hi) != 3 or lo[0] != hi[0]:
        return [(lo, hi)]
    if lo == hi:
        cats = [lo]
    elif lo[1:].isdigit() and hi[1:].isdigit():
        cats = [f"{lo[0]}{n:02d}" for n in range(int(lo[1:]), int(hi[1:]) + 1)]
    else:
        return [(lo, hi)]
    return [(cat + a, cat + (b or a)) for cat in cats for a, b in suffixes]


def note_matches(ranges: tuple[tuple[str, ...], ...], code: str) -> bool:
    """True if ``code`` lies in one of ``ranges`` (see ``range_holds``)."""
    c = normalize_code(code)
    return any(range_holds(c, r) for r in ranges)


def range_holds(code: str, entry: tuple[str, ...]) -> bool:
    """Whether a normalized code lies in a parsed range ``(lo, hi[, qualifier])``: the range includes
    its endpoints' descendants, and the code meets the qualifier, if there is one."""
    return code >= entry[0] and code[: len(entry[1])] <= entry[1] and (
        len(entry) == 2 or qualifier_holds(code, entry[2]))


def parse_release(path: str | Path) -> Release:
    """Parse one tabular XML file; raises ``ReleaseFormatError`` for anything unusable."""
    path = Path(path)
    data = _read(path)
    with _gc_paused():
        root = _xml_root(data)
        info = _release_info(path, root, hashlib.sha256(data).hexdigest())
        release = Release(info, [], [], {}, {}, [])
        for elem in root.findall("chapter"):
            _parse_chapter(elem, release)
    if not release.chapters:
        raise ReleaseFormatError("no chapters found")
    if not release.codes:
        raise ReleaseFormatError("no codes found")
    return release


# --- file / metadata -------------------------------------------------------------------------------


@contextmanager
def _gc_paused() -> Iterator[None]:
    """~100k small objects trigger many pointless full collections; pausing them halves the parse time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ReleaseFormatError(f"file not found: {path}") from None
    except OSError as exc:
        raise ReleaseFormatError(f"cannot read {path}: {exc.strerror or exc}") from None


def _xml_root(data: bytes) -> ET.Element:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        line, col = exc.position
        reason = str(exc).split(":")[0]
        raise ReleaseFormatError(f"XML syntax error at line {line}, column {col}: {reason}") from None
    if root.tag != ROOT_TAG:
        raise ReleaseFormatError(f"not an ICD-10-CM tabular XML: root element is <{root.tag[:60]}>")
    return root


def _release_info(path: Path, root: ET.Element, checksum: str) -> ReleaseInfo:
    tokens = [t.lower() for t in re.split(r"[^A-Za-z0-9]+", path.name) if t]
    version = (root.findtext("version") or "").strip()
    years = [int(t) for t in tokens if re.fullmatch(r"(19|20)\d\d", t)]
    if version.isdigit() and len(version) == 4:
        fy = int(version)
    elif years:
        fy = years[-1]
    else:
        raise ReleaseFormatError("cannot determine the fiscal year: no <version> and no year in file name")
    month = next((_MONTHS[t] for t in tokens if t in _MONTHS), 10)
    if month == 10:
        return ReleaseInfo(f"FY{fy}", fy, date(fy - 1, 10, 1), date(fy, 9, 30), checksum)
    start = date(fy - 1 if month > 10 else fy, month, 1)
    name = f"FY{fy} {calendar.month_name[month]} update"
    return ReleaseInfo(name, fy, start, date(fy, 9, 30), checksum)


# --- chapters and blocks ---------------------------------------------------------------------------


def _flat(elem: ET.Element) -> str:
    """All text of an element, whitespace collapsed."""
    return " ".join("".join(elem.itertext()).split())


def _text(elem: ET.Element, tag: str) -> str:
    child = elem.find(tag)
    return "" if child is None else _flat(child)


def _split_title(desc: str) -> tuple[str, str, str]:
    """``"Neoplasms (C00-D49)"`` -> ``("Neoplasms", "C00", "D49")``; empty range if none."""
    m = _TRAILING_RANGE_RE.search(desc)
    if m is None:
        return desc, "", ""
    return desc[: m.start()].strip(), normalize_code(m[1]), normalize_code(m[2])


def _notes(elem: ET.Element) -> dict[str, tuple[Note, ...]]:
    out: dict[str, tuple[Note, ...]] = dict.fromkeys(NOTE_KINDS, ())
    for child in elem:
        kind = _NOTE_TAGS.get(child.tag)
        if kind is None:
            continue
        texts = (_flat(n) for n in child.findall("note"))
        out[kind] += tuple(Note(t, parse_note_ranges(t)) for t in texts if t)
    return out


def _parse_chapter(elem: ET.Element, release: Release) -> None:
    name = _text(elem, "name")
    if not name.isdigit():
        raise ReleaseFormatError(f"chapter with invalid number {name[:20]!r}")
    number = int(name)
    description, first, last = _split_title(_text(elem, "desc"))
    ref_list = list(elem.iter("sectionRef"))
    if not first and ref_list:
        first = normalize_code(ref_list[0].get("first", ""))
        last = normalize_code(ref_list[-1].get("last", ""))
    release.chapters.append(Chapter(number, first, last, description))
    release.chapter_notes[number] = _notes(elem)
    refs = {r.get("id", ""): r for r in ref_list}
    for section in elem.findall("section"):
        _parse_block(section, refs.get(section.get("id", "")), number, release)


def _parse_block(elem: ET.Element, ref: ET.Element | None, chapter: int, release: Release) -> None:
    block_id = elem.get("id", "").strip()
    if not block_id:
        raise ReleaseFormatError(f"<section> without id in chapter {chapter}")
    description, first, last = _split_title(_text(elem, "desc"))
    if ref is not None:
        first, last = normalize_code(ref.get("first", "")), normalize_code(ref.get("last", ""))
        description = _flat(ref) or description
    if not first:
        first, _, last = block_id.partition("-")
        first, last = normalize_code(first), normalize_code(last or first)
    release.blocks.append(Block(block_id, first, last, description, chapter))
    release.block_notes[block_id] = _notes(elem)
    for diag in elem.findall("diag"):
        _walk(diag, chapter, block_id, None, _NO_SEVENTH, release.codes)


# --- codes -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Seventh:
    """Effective 7th-character definitions plus note-stated exceptions (6th char -> chars not allowed)."""

    defs: dict[str, str]
    skip: dict[str, frozenset[str]]

    def allowed(self, code: str) -> dict[str, str]:
        bad = self.skip.get(code.ljust(6, "X")[5], frozenset())
        return {char: meaning for char, meaning in self.defs.items() if char not in bad}


def _seventh(elem: ET.Element, inherited: _Seventh, notes: dict[str, tuple[Note, ...]]) -> _Seventh:
    defs_elem = elem.find("sevenChrDef")
    defs = inherited.defs
    if defs_elem is not None:
        defs = {e.get("char", "").strip(): _flat(e) for e in defs_elem.findall("extension")}
    skip = inherited.skip
    # S06: "7th characters D and S do not apply to codes in category S06 with 6th character 7 - ..."
    for m in filter(None, (_SKIP_RE.search(note.text) for note in notes["notes"])):
        chars = frozenset(re.findall(r"\b[A-Z]\b", m["chars"]))
        skip = skip | dict.fromkeys(re.findall(r"\b([0-9A-Z]) -", m["sixth"]), chars)
    return inherited if defs is inherited.defs and skip is inherited.skip else _Seventh(defs, skip)


_NO_SEVENTH = _Seventh({}, {})


def _walk(
    elem: ET.Element, chapter: int, block: str, parent: CodeRow | None, inherited: _Seventh,
    out: list[CodeRow],
) -> None:
    code = normalize_code(_text(elem, "name"))
    if not code:
        raise ReleaseFormatError(f"<diag> without <name> in block {block}")
    notes = _notes(elem)
    seventh = _seventh(elem, inherited, notes)
    children = elem.findall("diag")
    expand = not children and bool(seventh.defs) and len(code) < 7
    ancestors = (*parent.ancestors, parent.code) if parent else ()
    row = CodeRow(
        code=code, dotted=dotted(code), description=_text(elem, "desc"), billable=not children and not expand,
        chapter=chapter, block=block, parent=parent.code if parent else None, ancestors=ancestors,
        depth=len(ancestors) + 1, inclusion_terms=tuple(n.text for n in notes["inclusion_terms"]),
        includes=tuple(n.text for n in notes["includes"]), excludes1=notes["excludes1"],
        excludes2=notes["excludes2"], code_first=notes["code_first"], use_additional=notes["use_additional"],
        code_also=notes["code_also"], seven_char=seventh.allowed(code) if expand else dict(seventh.defs),
        requires_seventh=expand,
    )
    out.append(row)
    if expand:
        out.extend(_expand(row))
    for child in children:
        _walk(child, chapter, block, row, seventh, out)


def _expand(base: CodeRow) -> list[CodeRow]:
    """One billable child per 7th character; the base is padded with placeholder ``X`` to six characters."""
    stem = base.code.ljust(6, "X")
    head = dotted(stem)
    return [
        CodeRow(
            code=stem + char, dotted=head + char, description=f"{base.description}, {meaning}",
            billable=True, chapter=base.chapter, block=base.block, parent=base.code,
            ancestors=(*base.ancestors, base.code), depth=base.depth + 1, seven_char={char: meaning},
        )
        for char, meaning in base.seven_char.items()
    ]
