"""Lenient input normalization for codes and search text (no database, no I/O)."""

from __future__ import annotations

import re
import unicodedata

# A letter, then two characters (a digit or, as in FY2026's QA0 category, a letter), then up to 4 more.
CODE_RE = re.compile(r"^[A-Z][0-9A-Z][0-9A-Z](?:[0-9A-Z]{1,4})?$")
_CODE_JUNK = re.compile(r"[\s.\-_'\"`,;:]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_WORDS = re.compile(r"[a-z0-9]+")
_AUXILIARY = re.compile(r"(?<=[a-z])'(?:m|ve|re|ll|d)\b")


def normalize_code(raw: str) -> str:
    """`" e11.9 "`, `"E11-9"`, `"e119"` -> `"E119"`; no validation beyond cleaning."""
    return _CODE_JUNK.sub("", unicodedata.normalize("NFKC", raw or "")).upper()



def dotted(code: str) -> str:
    return f"{code[:3]}.{code[3:]}" if len(code) > 3 else code


def has_control_chars(text: str) -> bool:
    return bool(_CONTROL.search(text))


def fold(text: str) -> str:
    """Lowercase ASCII-folded text ("Sjögren's" -> "sjogren's"), whitespace collapsed."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(text.lower().split())


def words(text: str) -> list[str]:
    """Alphanumeric words of folded text; an apostrophe-s belongs to its word ("crohn's" -> "crohns"),
    and so does a contracted "not" ("can't" -> "cant", as people also write it); a contracted "am",
    "have", "are", "will" or "would" is left out ("i'm tired": i, tired)."""
    folded = fold(text).replace("\u2019", "'")
    return _WORDS.findall(_AUXILIARY.sub("", folded.replace("'s", "s").replace("n't", "nt")))
