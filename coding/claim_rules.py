"""Edit data: which edits a payer rejects, and the sex and age ranges of the classification itself.

The ranges are ICD-10-CM's own chapters, blocks and categories (not a payer's list): the pregnancy
chapter and the pregnancy-related Z categories, the perinatal chapter, and the blocks and categories
named for the female or the male genital organs. A range (lo, hi) holds code c when
`c >= lo and c[:len(hi)] <= hi`, as for Excludes1 notes.
"""

from __future__ import annotations

from collections.abc import Iterable

# What a payer rejects is an error; what a coder should look at is a warning.
ERROR_EDITS = frozenset({
    "INVALID_CODE", "NOT_BILLABLE", "MISSING_7TH_CHARACTER", "EXCLUDES1_CONFLICT", "MANIFESTATION_FIRST",
    "EXTERNAL_CAUSE_FIRST", "SEX_CONFLICT", "NO_DIAGNOSIS", "CODE_NOT_EFFECTIVE", "MALFORMED_LINE",
})
WARNING_EDITS = frozenset({"DUPLICATE_CODE", "AGE_CONFLICT"})
EDIT_NAMES = ERROR_EDITS | WARNING_EDITS

FEMALE_ONLY: tuple[tuple[str, str, str], ...] = (
    ("O00", "O9A", "pregnancy, childbirth and the puerperium (chapter 15)"),
    ("Z33", "Z36", "pregnancy, supervision of pregnancy and antenatal screening (Z33-Z36)"),
    ("Z39", "Z39", "postpartum care and examination (Z39)"),
    ("Z3A", "Z3A", "weeks of gestation (Z3A)"),
    ("N70", "N77", "inflammatory diseases of female pelvic organs (N70-N77)"),
    ("N80", "N98", "noninflammatory disorders of female genital tract (N80-N98)"),
    ("C51", "C58", "malignant neoplasms of female genital organs (C51-C58)"),
    ("D06", "D06", "carcinoma in situ of cervix uteri (D06)"),
    ("D070", "D073", "carcinoma in situ of female genital organs (D07.0-D07.3)"),
    ("D25", "D28", "benign neoplasms of female genital organs (D25-D28)"),
    ("D39", "D39", "neoplasm of uncertain behavior of female genital organs (D39)"),
    ("Q50", "Q52", "congenital malformations of female genital organs (Q50-Q52)"),
    ("R87", "R87", "abnormal findings in specimens from female genital organs (R87)"),
)
MALE_ONLY: tuple[tuple[str, str, str], ...] = (
    ("N40", "N53", "diseases of male genital organs (N40-N53)"),
    ("C60", "C63", "malignant neoplasms of male genital organs (C60-C63)"),
    ("D074", "D076", "carcinoma in situ of male genital organs (D07.4-D07.6)"),
    ("D29", "D29", "benign neoplasm of male genital organs (D29)"),
    ("D40", "D40", "neoplasm of uncertain behavior of male genital organs (D40)"),
    ("Q53", "Q55", "congenital malformations of male genital organs (Q53-Q55)"),
    ("R86", "R86", "abnormal findings in specimens from male genital organs (R86)"),
    ("Z125", "Z125", "screening for malignant neoplasm of prostate (Z12.5)"),
)
# (lo, hi, youngest, oldest, why): maternal ages follow CMS's Medicare Code Editor (9-64 years);
# the perinatal chapter says "for use on newborn records only".
AGE_RANGES: tuple[tuple[str, str, int, int, str], ...] = (
    ("O00", "O9A", 9, 64, "pregnancy, childbirth and the puerperium (chapter 15) is for maternal ages 9-64"),
    ("Z33", "Z36", 9, 64, "pregnancy-related codes (Z33-Z36) are for maternal ages 9-64"),
    ("Z3A", "Z3A", 9, 64, "weeks of gestation (Z3A) is for maternal ages 9-64"),
    ("P00", "P96", 0, 0, "perinatal conditions (chapter 16) are for newborn records"),
    ("Z38", "Z38", 0, 0, "liveborn infants by place of birth (Z38) is for newborn records"),
)


def in_range(code: str, lo: str, hi: str) -> bool:
    return code >= lo and code[: len(hi)] <= hi


def _by_letter(ranges: Iterable[tuple]) -> dict[str, list]:
    """Ranges keyed by each first letter they cover: most codes' letter has none to check."""
    index: dict[str, list] = {}
    for entry in ranges:
        for letter in map(chr, range(ord(entry[0][0]), ord(entry[1][0]) + 1)):
            index.setdefault(letter, []).append(entry)
    return index


_SEX_BY_LETTER = _by_letter([(lo, hi, sex, why) for sex, ranges in (("F", FEMALE_ONLY), ("M", MALE_ONLY))
                             for lo, hi, why in ranges])
_AGE_BY_LETTER = _by_letter(AGE_RANGES)


def sex_rule(code: str) -> tuple[str, str] | None:
    """('F'|'M', why) when the code is for one sex only."""
    for lo, hi, sex, why in _SEX_BY_LETTER.get(code[:1], ()):
        if in_range(code, lo, hi):
            return sex, why
    return None


def age_rule(code: str) -> tuple[int, int, str] | None:
    for lo, hi, youngest, oldest, why in _AGE_BY_LETTER.get(code[:1], ()):
        if in_range(code, lo, hi):
            return youngest, oldest, why
    return None
