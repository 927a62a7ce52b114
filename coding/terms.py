"""Words of clinical text: tokens, light stemming, the curated synonym table, typo correction.

Plain functions and data, no database: the search index and the query side share them, so both
sides of a match are normalized the same way.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

from coding.normalize import words

DATA = Path(__file__).parent / "data"

def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOPWORDS = _set("a an the of and or in on to by for at as from is are was be been being this that these those "
                 "my his her their patient pt pts c o co h having has have had very with presents presenting "
                 "presented complains complaining reports reported states stated noted cc dx")
# Words that say "nothing more specific": a description made of them is a good generic answer.
NEUTRAL = _set("unspecified nos site not specified organism part type elsewhere classified uncomplicated")
# Words that say what kind of code is wanted rather than which condition: "history of DVT" is a
# personal-history code (Z86.718), "screening for depression" a screening encounter (Z13.31). An
# entry without such a word of the query scores far lower, whatever else it shares with it.
FRAMING = _set("history family screening counseling status presence aftercare examination encounter refill "
               "prescription vaccination immunization prophylactic observation suspected fitting "
               "adjustment removal")
# Words about the patient rather than the condition ("fever in child", "dehydration in elderly"):
# they weigh DESCRIPTOR_WEIGHT of a word in matching, enough to break ties ("child abuse").
DESCRIPTORS = _set("child children kid kids infant baby babies toddler adult elderly geriatric boy girl man "
                   "woman men women adolescent teen teenager young aged son daughter grandson granddaughter")
DESCRIPTOR_WEIGHT = 0.3
# How people stress what they say ("worst headache of my life", "i keep coughing", "my sugar is running
# high"): said beside a condition, these words weigh DESCRIPTOR_WEIGHT too. A rare title word among them
# ("life", "running") had outweighed the condition itself and answered with "life management difficulty".
EMPHASIS = _set("worst bad badly really real terrible awful horrible always keep keeps keeping kept ever life "
                "getting get gets got think thought just running lately case told")
# Body sites as lay people name them: in "eczema hands" the condition decides and the site narrows
# it; a code with the site but another condition (an abscess of the hand) must not win.
SITES = _set("hand hands arm arms leg legs foot feet back face head neck chest knee knees shoulder hip "
             "ankle wrist elbow finger fingers toe toes thumb eye eyes ear ears nose mouth lip lips skin "
             "scalp forehead cheek jaw belly stomach groin buttock thigh calf shin heel great forearm armpit "
             "underarm axilla palm sole eyebrow chin temple breast navel waist torso")
SITE_WEIGHT = 0.6
# Words that qualify a condition (course, severity, side): the same weight as a lay site, for the
# same reason ("insomnia chronic" is insomnia; "knee pain bilateral" is knee pain, not ocular pain).
SIDES = _set("right left bilateral")  # of a lay site: "gout right big toe" is gout of a site
MODIFIERS = _set("chronic acute subacute severe mild moderate recurrent persistent intermittent exacerbation "
                 "unilateral") | SIDES
# Words saying when rather than what ("threw up all night" is vomiting, "f/u htn" a visit for hypertension):
# weighed and stood in for as a lay site is; a code with both ("night sweats") is still found whole.
WHEN = _set("night nightly nighttime day daily morning evening time week weekly constantly today follow up")
NARROWING = SITES | MODIFIERS | WHEN  # the words that weigh SITE_WEIGHT beside a condition
# Words whose place in a phrase carries its sense: a curated phrase with one matches in its order only.
ORDERED = _set("with without no not non after before due")
# Contractions ("can't get up"): never in the classification, and not a misspelling of what is ("cant"
# had found a grocery cart); a curated phrase may still hold one ("cant sleep").
CONTRACTED = _set("cant dont wont didnt doesnt isnt wasnt couldnt wouldnt aint havent hasnt")
# 7th-character vocabulary: chooses the 7th character of an injury code, not the code itself.
ENCOUNTER = _set("initial subsequent sequela encounter routine healing delayed nonunion malunion open closed")


def stem(word: str) -> str:
    """A deliberately light stemmer: plurals only ("fractures" -> "fracture", "ribs" -> "rib")."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is", "ous", "sis")):
        return word[:-1]
    return word


# Slash shorthand, before the slash parts it: "w/o" is without, "w/" with, "s/p" status post, "w/d"
# withdrawal ("etoh w/d"; "w/dressing" stays with).
_SHORTHAND = re.compile(r"\b(w/o|w/d(?![a-z])|w/|s/p|h/o|r/o|f/u|n/v)(?=\W|\d|$|[a-z])", re.IGNORECASE)
_SHORTHAND_WORDS = {"w/o": " without ", "w/d": " withdrawal ", "w/": " with ", "s/p": " status post ",
                    "h/o": " history of ", "r/o": " rule out ", "f/u": " follow up ", "n/v": " nausea vomiting "}


# A roman grade, stage, type or class is its number, in titles and queries alike ("Follicular lymphoma
# grade III" and "grade III IVH" meet "grade 3"; "Angle's class I" is "class 1").
_ROMAN = re.compile(r"\b(grade|stage|type|class|degree) (iv|v|i{1,3})\b", re.IGNORECASE)
_ROMAN_VALUES = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "v": "5"}


def tokens(text: str) -> list[str]:
    """Content tokens of a text, stemmed, in order; stopwords dropped, digits kept, and "a" or "c"
    kept where it is a letter that names something ("vitamin A", "hepatitis C", "group A")."""
    if "/" in text:
        text = _SHORTHAND.sub(lambda m: _SHORTHAND_WORDS[m[1].lower()], text)
    if " i" in text or " I" in text or " v" in text or " V" in text:
        text = _ROMAN.sub(lambda m: f"{m[1]} {_ROMAN_VALUES[m[2].lower()]}", text)
    out: list[str] = []
    previous = ""
    for w in words(text):
        if w not in STOPWORDS or (w in _LETTERS and previous in _LETTERED):
            out.append(stem(w))
        previous = w
    return out


def _lone(text: str) -> tuple[str, ...]:
    """A text of one word, as that word; else nothing."""
    found = words(text)
    return tuple(found) if len(found) == 1 else ()


def query_tokens(text: str) -> list[str]:
    """A query's tokens: tokens(), or for a query that is one stopword alone, that word if the
    curated table rewrites it (an abbreviation: "AS" is aortic stenosis; "as" in a sentence is not)."""
    found = tokens(text)
    if not found and (alone := _lone(text)) in synonyms().rewrites:
        return list(alone)
    return found


_LETTERED = frozenset({"vitamin", "hepatitis", "hep", "group", "type", "factor", "class", "grade", "strep", "flu",
                       "influenza", "fever", "syndrome", "protein"})
_LETTERS = frozenset({"a", "c"})  # the letters that are also stopwords ("a", "c/o")


@dataclass(frozen=True)
class Synonyms:
    """Phrase rewrites (lay terms, abbreviations, misspellings -> the classification's words)
    and canonical codes for common unqualified terms."""

    rewrites: dict[tuple[str, ...], tuple[str, ...]]
    longest: int
    preferred: dict[frozenset[str], tuple[str, ...]]
    alternatives: dict[str, tuple[str, ...]]
    priors: dict[str, float]  # code prefix (no dot) -> score nudge
    # The same phrases of two or more words keyed by their words sorted: "back pain lower" is "lower
    # back pain" (a bag that two phrases share with different meanings is left out).
    unordered: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)
    # The words of the curated phrases (lay words the classification lacks: "shingles") by their
    # one-deletion variants, so a misspelt one is found as an index word's typo is (lay_word()).
    lay_neighbours: dict[str, tuple[str, ...]] = field(default_factory=dict)
    words: frozenset[str] = frozenset()  # every word of the curated phrases, as spelt there

    def lay_word(self, word: str) -> str | None:
        """The one word of the curated phrases a misspelt word stands for, at the fewest edits."""
        typos = max_typos(word)
        if not typos:
            return None
        candidates = {c for variant in deletes(word, typos) for c in self.lay_neighbours.get(variant, ())}
        scored = sorted((edit_distance(word, c, typos), c) for c in candidates)
        scored = [s for s in scored if s[0] <= typos]
        if not scored or (len(scored) > 1 and scored[1][0] == scored[0][0]):
            return None  # none, or two as close: no guess
        return scored[0][1]

    def rewrite(self, toks: list[str]) -> list[str]:
        """`rewrite`, then once more over what it made: "stomach hurts" -> "stomach pain" ->
        "abdominal pain" (two passes at most; a rule never feeds itself forever)."""
        once = rewrite(toks, self.rewrites, self.longest, self.unordered)
        return once if once == toks else rewrite(once, self.rewrites, self.longest, self.unordered)


def _rows(name: str) -> Iterable[dict[str, str]]:
    with (DATA / name).open(newline="", encoding="utf-8") as handle:
        yield from (row for row in csv.DictReader(handle) if not row[next(iter(row))].startswith("#"))


@cache
def synonyms() -> Synonyms:
    rewrites: dict[tuple[str, ...], tuple[str, ...]] = {}
    for row in _rows("synonyms.csv"):
        # A stopword the table names ("AS", aortic stenosis) is kept by its word: query_tokens()
        # looks it up only for a query that is that word alone.
        source = tuple(tokens(row["term"])) or _lone(row["term"])
        if source:
            rewrites[source] = tuple(tokens(row["means"]))
    alternatives = {stem(r["word"]): tuple(tokens(r["alternatives"])) for r in _rows("alternatives.csv")}
    priors = {r["prefix"].replace(".", ""): float(r["adjustment"]) for r in _rows("priors.csv")}
    bags: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
    for source, target in rewrites.items():
        # Not a phrase whose order carries its sense: "without diabetes" is not "diabetes without".
        if len(set(source)) > 1 and ORDERED.isdisjoint(source):
            bags.setdefault(tuple(sorted(source)), set()).add(target)
    unordered = {bag: next(iter(targets)) for bag, targets in bags.items() if len(targets) == 1}
    lay: dict[str, set[str]] = {}
    for word in {w for source in rewrites for w in source if len(w) >= 5}:
        for variant in deletes(word, 1):
            lay.setdefault(variant, set()).add(word)
    table = Synonyms(rewrites, max(map(len, rewrites)), {}, alternatives, priors, unordered,
                     {variant: tuple(sorted(words)) for variant, words in lay.items()},
                     frozenset(w for source in rewrites for w in source))
    preferred = {frozenset(table.rewrite(tokens(row["term"]))):  # keyed as a query is rewritten, so the two meet
                 tuple(c.strip().replace(".", "") for c in row["codes"].split()) for row in _rows("preferred.csv")}
    return replace(table, preferred=preferred)


def rewrite(toks: list[str], rewrites: dict[tuple[str, ...], tuple[str, ...]], longest: int,
            unordered: dict[tuple[str, ...], tuple[str, ...]] | None = None) -> list[str]:
    """Replace the longest known phrases first, left to right ("sugar diabetes" -> "diabetes mellitus");
    with `unordered`, a run of words is also a phrase in any order of its words."""
    out: list[str] = []
    i = 0
    while i < len(toks):
        for n in range(min(longest, len(toks) - i), 0, -1):
            window = tuple(toks[i:i + n])
            target = rewrites.get(window)
            if target is None and unordered and n > 1:
                target = unordered.get(tuple(sorted(window)))
            if target is not None:
                out.extend(target)
                i += n
                break
        else:
            out.append(toks[i])
            i += 1
    return list(dict.fromkeys(out))  # a repeated word adds nothing to a bag-of-words match


def deletes(word: str, depth: int) -> set[str]:
    """Every string `depth` or fewer deletions away from `word` (SymSpell's neighbourhood)."""
    found = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1:] for w in frontier for i in range(len(w)) if len(w) > 1}
        found |= frontier
    return found


def edit_distance(a: str, b: str, cap: int = 3) -> int:
    """Damerau-Levenshtein (optimal string alignment) distance, stopping early past `cap`."""
    if abs(len(a) - len(b)) > cap:
        return cap + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], prev2[j - 2] + 1)
        if min(row) > cap:
            return cap + 1
        prev2, prev = prev, row
    return prev[-1]


def max_typos(word: str) -> int:
    return 0 if len(word) < 4 else 1 if len(word) < 8 else 2
