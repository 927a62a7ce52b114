"""What the claim edits need of each code beyond its own row, worked out once per release at load time.

The conventions make a code inherit notes from its ancestors, its block and its chapter. A claims
worker used to rebuild that inheritance for every code it met (measured: ~0.1 ms a code, most of
coding a 1,000,000-line file's 63,000 distinct codes per worker process); now the loader stores the
result beside each code (`icd_codes.claim_facts`) and a worker fetches one small value per code.

The value, as JSON: {"x": [[lo, hi], ...], "m": bool}
- x: the parsed ranges of every Excludes1 note at the code, its ancestors, its block and its chapter
  (a code c is excluded when `c >= lo and c[:len(hi)] <= hi`, and meets the range's third element
  if it has one: a character-position condition, `coding.tabular.qualifier_holds`), without
  duplicates, nearest first;
- m: the etiology/manifestation convention: a title "... classified elsewhere" at the code or a
  category above it, and a "code first" note there too. Stricter than the API's
  `code_first_required`, which also counts code-first notes inherited from a block or chapter:
  measured on examples/claims_sample.csv, that flags ~1,000 poisoning, burn and other lines as
  MANIFESTATION_FIRST, an edit payers reject.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import NamedTuple

import orjson

Ranges = tuple[tuple[str, ...], ...]  # (lo, hi) or (lo, hi, qualifier)
ELSEWHERE = "classified elsewhere"


class FactSource(NamedTuple):
    """One code of one release, as the loader or the database has it."""

    code: str
    description: str
    ancestors: tuple[str, ...]  # top-down
    block: str | None
    chapter: int | None
    excludes1: Ranges  # ranges of the code's own Excludes1 notes
    code_first: bool  # the code has a "code first" note of its own


def claim_facts(codes: Mapping[str, FactSource], block_excludes1: Mapping[str, Ranges],
                chapter_excludes1: Mapping[int, Ranges]) -> Iterator[tuple[str, str]]:
    """(code, claim facts JSON) for every code of one release."""
    for code, source in codes.items():
        chain = [source, *(codes[a] for a in reversed(source.ancestors) if a in codes)]
        ranges = dict.fromkeys(r for link in chain for r in link.excludes1)
        ranges.update(dict.fromkeys(block_excludes1.get(source.block or "", ())))
        ranges.update(dict.fromkeys(chapter_excludes1.get(source.chapter or 0, ())))
        manifestation = (any(ELSEWHERE in link.description.lower() for link in chain)
                         and any(link.code_first for link in chain))
        yield code, orjson.dumps({"x": [list(r) for r in ranges if r[0] and r[1]], "m": manifestation}).decode()


def note_ranges(notes: Iterable[dict]) -> Ranges:
    """Stored notes ([{"text", "ranges"}]) -> their ranges, in order."""
    return tuple(tuple(r) for note in notes or () for r in note["ranges"])
