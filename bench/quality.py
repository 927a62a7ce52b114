"""Ranking quality on the evaluation set: top-1 / top-5 over phrases -> acceptable codes."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

EVAL_SET = Path(__file__).parent / "search_eval.csv"


@dataclass(frozen=True)
class Case:
    phrase: str
    acceptable: tuple[str, ...]  # dotted codes; a trailing * accepts any code starting so
    style: str


def load_cases(path: Path = EVAL_SET) -> list[Case]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [Case(r["phrase"], tuple(r["acceptable"].split()), r["style"]) for r in csv.DictReader(handle)]


def accepted(code: str, case: Case) -> bool:
    return any(code.startswith(a[:-1]) if a.endswith("*") else code == a for a in case.acceptable)


def evaluate(cases: list[Case], ranked: Callable[[str], list[str]]) -> tuple[float, float, list[tuple]]:
    """(top-1, top-5, misses) where `ranked(phrase)` gives result codes, best first."""
    top1 = top5 = 0
    misses = []
    for case in cases:
        codes = ranked(case.phrase)
        top1 += bool(codes) and accepted(codes[0], case)
        hit5 = any(accepted(c, case) for c in codes[:5])
        top5 += hit5
        if not (codes and accepted(codes[0], case)):
            misses.append((case.phrase, case.acceptable, codes[:3], hit5))
    return top1 / len(cases), top5 / len(cases), misses
