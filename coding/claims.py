"""Coding claim lines: every diagnosis checked, the contract's edits applied, a result record per line.

Plain functions: the caller resolves codes and free text in one batch per chunk and passes the
answers in, so nothing here touches a database, a cache or a queue. Status is `error` when a
line carries an edit a payer rejects (claim_rules.ERROR_EDITS), `warning` when it carries only
edits a coder should look at, `ok` otherwise.
"""

from __future__ import annotations

import re
import sys
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import orjson

from coding.claim_csv import MAX_DX_COLUMNS, ClaimLine, Layout, parse_record
from coding.claim_rules import ERROR_EDITS
from coding.tabular import range_holds

CODE_SHAPE = re.compile(r"^[A-Z][0-9][0-9A-Z][0-9A-Z]{0,4}$")


@dataclass(slots=True, eq=False)
class CodeFacts:
    """What the edits need to know about one normalized code (from any loaded release).

    Built once per code and process (coding.claim_lookup), so everything that depends on the code
    alone is worked out here and the per-line work is lookups. Read-only by convention, not frozen:
    a frozen dataclass sets each field through object.__setattr__, which made building the facts of
    the 98,000 codes of a release take ~0.5 s longer.
    """

    code: str
    dotted: str
    description: str
    billable: bool
    requires_seventh: bool = False
    manifestation: bool = False
    current: bool = True  # held by the active release
    releases: tuple[tuple[date, date], ...] = ()  # effective windows of the releases holding it
    excludes1: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)  # by first letter
    who_only: str | None = None  # for a WHO ICD-10 code that ICD-10-CM does not have: the message
    sex: tuple[str, str] | None = None  # claim_rules.sex_rule of the code
    age: tuple[int, int, str] | None = None  # claim_rules.age_rule of the code
    # Every 3-character category an Excludes1 range could hold (excludes1_categories); None: check
    # every pair. Lets a line whose codes' categories meet no one's exclusions skip the pair checks.
    xcats: frozenset[str] | None = frozenset()
    cat: str = field(init=False, default="")  # the code's category (its first 3 characters)
    own_edits: tuple[dict, ...] = field(init=False, default=())  # edits of the code alone, every line
    shown: str = field(init=False, default="")  # a diagnosis's JSON fields after position and input

    def __post_init__(self) -> None:
        self.cat = sys.intern(self.code[:3])  # ~2,000 categories, not one string per code
        edits: list = []
        if self.who_only:
            _edit(edits, "INVALID_CODE", [self.dotted], self.who_only)
        elif self.requires_seventh:
            _edit(edits, "MISSING_7TH_CHARACTER", [self.dotted],
                  f"{self.dotted} needs a 7th character (e.g. {self.dotted}{'X' * (6 - len(self.code))}A)")
        elif not self.billable:
            _edit(edits, "NOT_BILLABLE", [self.dotted],
                  f"{self.dotted} is a category with subdivisions; code to the highest specificity")
        self.own_edits = tuple(edits)
        shown = {"code": self.dotted, "valid": True, "billable": self.billable, "description": self.description}
        self.shown = orjson.dumps(shown).decode()[1:]  # '"code":...}'


Resolver = Callable[[set[str]], Mapping[str, CodeFacts | None]]  # read with .get: None for an unknown code
Suggester = Callable[[Sequence[str]], dict[str, list[dict]]]


def normalize(text: str) -> str:
    return "".join(text.split()).replace(".", "").upper()


def dotted(code: str) -> str:
    return f"{code[:3]}.{code[3:]}" if len(code) > 3 else code


def excludes1_index(ranges: Iterable[tuple[str, ...]]) -> dict[str, tuple[tuple[str, ...], ...]]:
    """Excludes1 ranges ((lo, hi) or (lo, hi, qualifier)) keyed by each first letter they cover, so a
    check looks at a handful."""
    by_letter: dict[str, list[tuple[str, ...]]] = {}
    for entry in ranges:
        lo, hi = entry[0], entry[1]
        if not lo or not hi:
            continue
        for letter in map(chr, range(ord(lo[0]), ord(hi[0]) + 1)):
            by_letter.setdefault(letter, []).append(tuple(entry))
    return {k: tuple(dict.fromkeys(v)) for k, v in by_letter.items()}


def excludes1_categories(ranges: Iterable[tuple[str, ...]], categories: Sequence[str]) -> frozenset[str] | None:
    """The categories (of the sorted `categories` of the loaded releases) that Excludes1 ranges (lo,
    hi[, qualifier]) could hold: a code in a range has its category between lo's and hi's. None when
    a range is too short to say (then every pair is checked)."""
    found: set[str] = set()
    for entry in ranges:
        lo, hi = entry[0], entry[1]
        if not lo or not hi:
            continue  # excludes1_index skips these too
        if len(lo) < 3 or len(hi) < 3:
            return None
        found.update(categories[bisect_left(categories, lo[:3]):bisect_right(categories, hi[:3])])
    return frozenset(found)


def _may_conflict(distinct: list[CodeFacts]) -> bool:
    """Whether any code's Excludes1 could hold another code of the line (by category, in C)."""
    cats = {f.cat for f in distinct}
    for f in distinct:
        x = f.xcats
        if x is None or (x and not x.isdisjoint(cats)):
            return True
    return False


def _excludes(facts: CodeFacts, code: str) -> bool:
    ranges = facts.excludes1.get(code[0])
    if not ranges:
        return False
    return any(range_holds(code, entry) for entry in ranges)


def _conflicts(distinct: list[CodeFacts], edits: list) -> None:
    """EXCLUDES1_CONFLICT for each pair of distinct known codes on the line."""
    for i, a in enumerate(distinct):
        mine = a.excludes1
        for b in distinct[i + 1:]:
            if ((mine and b.code[0] in mine and _excludes(a, b.code))
                    or (b.excludes1 and a.code[0] in b.excludes1 and _excludes(b, a.code))):
                _edit(edits, "EXCLUDES1_CONFLICT", [a.dotted, b.dotted],
                      f"{a.dotted} and {b.dotted} are mutually exclusive (Excludes1)")


def _edit(edits: list, name: str, codes: list[str], message: str) -> None:
    edits.append({"edit": name, "codes": codes, "message": message})


def _unknown(pos: int, raw: str, code: str, facts: CodeFacts | None, edits: list) -> dict:
    shown = dotted(code) if CODE_SHAPE.match(code) else None
    if facts is None:
        _edit(edits, "INVALID_CODE", [shown or raw], f"{shown or raw} is not an ICD-10-CM code in any loaded release")
    else:
        edits.extend(facts.own_edits)
    return {"position": pos, "input": raw, "code": shown, "valid": False, "billable": False, "description": None}


def _not_effective(facts: CodeFacts, service: date | None, edits: list) -> None:
    if service is not None:
        for start, end in facts.releases:
            if start <= service <= end:
                return
        _edit(edits, "CODE_NOT_EFFECTIVE", [facts.dotted],
              f"{facts.dotted} is not valid on {service.isoformat()} in any loaded release")
    elif not facts.current:
        _edit(edits, "CODE_NOT_EFFECTIVE", [facts.dotted],
              f"{facts.dotted} is not in the current release (no service_date given)")


def _claim_edits(line: ClaimLine, codes: list[str], known: list[CodeFacts], edits: list) -> None:
    principal = codes[0]
    if principal[0] in "VWXY" and CODE_SHAPE.match(principal):
        _edit(edits, "EXTERNAL_CAUSE_FIRST", [dotted(principal)],
              f"{dotted(principal)} is an external cause code (V00-Y99); "
              "it may not be the principal diagnosis")
    if known and known[0].code == principal and known[0].manifestation:
        _edit(edits, "MANIFESTATION_FIRST", [known[0].dotted],
              f"{known[0].dotted} is a manifestation code; code the underlying condition first")
    distinct = known
    if len(set(codes)) < len(codes):
        seen: set[str] = set()
        for code in codes:
            if code in seen:
                _edit(edits, "DUPLICATE_CODE", [dotted(code)], f"{dotted(code)} appears more than once")
            seen.add(code)
        distinct = list({f.code: f for f in known}.values())
    if len(distinct) > 1 and _may_conflict(distinct):
        _conflicts(distinct, edits)
    sex, age = line.sex, line.age
    if sex == "U" and age is None:
        return
    for facts in distinct:
        if sex != "U" and (srule := facts.sex) and srule[0] != sex:
            _edit(edits, "SEX_CONFLICT", [facts.dotted],
                  f"{facts.dotted} is for {'female' if srule[0] == 'F' else 'male'} patients only: {srule[1]}")
        if age is not None and (rule := facts.age) and not rule[0] <= age <= rule[1]:
            _edit(edits, "AGE_CONFLICT", [facts.dotted], f"{facts.dotted} at age {age}: {rule[2]}")


def code_line(line: ClaimLine, cells: dict[str, tuple[str, CodeFacts | None, str]],
              suggestions: dict[str, list[dict]]) -> tuple[str, str, list[dict]]:
    """One parsed line -> (result record JSON, status, edits).

    `cells` (code_records): each raw diagnosis cell of the chunk -> (normalized code, its facts or None,
    the diagnosis's JSON after its position), made once per chunk, so a diagnosis costs one
    dictionary lookup. The record is assembled from those JSON pieces (CodeFacts.shown): measured,
    that halves the cost of a line against building dicts and serializing each description again;
    the text is exactly what `orjson.dumps` of the record as a dict would give.
    """
    edits: list[dict] = []
    for problem in line.problems or ():
        _edit(edits, "MALFORMED_LINE", [], problem)
    service: date | None = line.service_date
    codes, known, parts = [], [], []
    for pos, raw in line.dx:
        code, f, shown = cells[raw]
        codes.append(code)
        if f is None or not shown:
            parts.append(_dumps(_unknown(pos, raw, code, f, edits)))
            continue
        known.append(f)
        if f.own_edits:
            edits.extend(f.own_edits)
        if service is not None:
            for start, end in f.releases:
                if start <= service <= end:
                    break
            else:
                _not_effective(f, service, edits)
        elif not f.current:
            _not_effective(f, service, edits)
        parts.append(_POSITIONS[pos] + shown)
    if not codes:
        _edit(edits, "NO_DIAGNOSIS", [], "the line has no diagnosis code")
    else:
        _claim_edits(line, codes, known, edits)
    status = status_of(edits) if edits else "ok"
    found = suggestions.get(line.dx_text) if line.dx_text else None
    record = (f'{{"claim_id":{_dumps(line.claim_id)},"line":{line.line},"status":"{status}",'
              f'"diagnoses":[{",".join(parts)}],"edits":{_dumps(edits) if edits else "[]"},'
              f'"suggestions":{_dumps(found) if found else "[]"}}}')
    return record, status, edits


_POSITIONS = [f'{{"position":{n},"input":' for n in range(MAX_DX_COLUMNS + 1)]


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


_BLANK = re.compile(r"[^\S\n]")  # whitespace other than the newline that joins cells below


def cell_codes(raws: Iterable[str]) -> dict[str, str]:
    """Raw diagnosis cells -> their normalized codes (`normalize`), all at once: the cells joined,
    cleaned and split again in C, where a call per cell cost ~0.5 us (and a memo across chunks held
    ~20 MB a process). Cells with whitespace or a line break inside are normalized one by one."""
    raws = list(raws)
    joined = "\n".join(raws)
    if joined.count("\n") != len(raws) - 1 or _BLANK.search(joined):
        return {raw: normalize(raw) for raw in raws}
    return dict(zip(raws, joined.replace(".", "").upper().split("\n"), strict=True))


def status_of(edits: list[dict]) -> str:
    if not edits:
        return "ok"
    for e in edits:
        if e["edit"] in ERROR_EDITS:
            return "error"
    return "warning"


def malformed_record(line: int, record: str, message: str) -> dict:
    claim_id = record.split(",", 1)[0].strip().strip('"')[:64] if record else ""
    return {"claim_id": claim_id, "line": line, "status": "error", "diagnoses": [],
            "edits": [{"edit": "MALFORMED_LINE", "codes": [], "message": f"line {line}: {message}"}],
            "suggestions": []}


def code_records(layout: Layout, first_line: int, records: Sequence[str], resolve: Resolver,
                 suggest: Suggester) -> tuple[list[str], dict]:
    """A chunk of records -> ([result record JSON, in line order], counts), with one resolve and one
    suggest.

    counts: {"status": {ok, warning, error}, "edits": {EDIT: lines carrying it}}.
    """
    parsed = [parse_record(layout, first_line + i, text) for i, text in enumerate(records)]
    # One pass: the chunk's own cells (a small dict the lines then read, where the process memo is
    # large and its lookups miss the CPU cache: measured ~20% of a chunk when read three times).
    cells: dict[str, tuple] = {}
    texts: set[str] = set()
    for p in parsed:
        if isinstance(p, str):
            continue
        for _, raw in p.dx:
            if raw not in cells:
                cells[raw] = ()
        if p.dx_text:
            texts.add(p.dx_text)
    normalized = cell_codes(cells)
    codes = set(normalized.values())
    facts = resolve(codes) if codes else {}
    get = facts.get
    for raw in cells:
        code = normalized[raw]
        f = get(code)
        # A known code's diagnosis JSON after its position, made once per distinct cell of the chunk.
        cells[raw] = (code, f, "" if f is None or f.who_only else f"{_dumps(raw)},{f.shown}")
    suggestions = suggest(sorted(texts)) if texts else {}
    rows, statuses, edit_counts = [], dict.fromkeys(("ok", "warning", "error"), 0), Counter[str]()
    for i, item in enumerate(parsed):
        if isinstance(item, str):
            malformed = malformed_record(first_line + i, records[i], item)
            record, status, edits = _dumps(malformed), "error", malformed["edits"]
        else:
            record, status, edits = code_line(item, cells, suggestions)
        statuses[status] += 1
        if edits:
            edit_counts.update({e["edit"] for e in edits})
        rows.append(record)
    return rows, {"status": {k: n for k, n in statuses.items() if n}, "edits": dict(edit_counts)}
