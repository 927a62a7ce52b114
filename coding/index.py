"""The in-process search index over the active release: built from PostgreSQL (the source of truth),
rebuilt when another release becomes active.

Why in process: a trigram query over the 98,000 descriptions takes ~400 ms in PostgreSQL; the
inverted index below answers in about a millisecond. Entries are the descriptions and inclusion
terms of every code except the 7th-character expansions (the search picks the 7th character).
"""

from __future__ import annotations

import bisect
import heapq
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain

from coding.terms import (
    CONTRACTED,
    ENCOUNTER,
    NEUTRAL,
    SIDES,
    SITES,
    deletes,
    edit_distance,
    max_typos,
    stem,
    synonyms,
    tokens,
)

FUZZY_WEIGHT = 0.8
SHORT_NAME = 5  # essential words of a title or inclusion term a query may name whole (short_names)
UNASKED = ("family", "nontraffic")  # kinds of code a query must ask for (search): "history of colon polyps" is
# the patient's own; a vehicle accident not said to be off the road is a traffic accident (guideline I.C.20)
TRIGRAM_WEIGHT = 0.7
# How a word may be spelt as it sounds, and how the classification writes that sound (_sounded).
_SOUNDS = (("f", "ph"), ("k", "ch"), ("c", "ch"), ("k", "c"), ("s", "c"), ("z", "s"), ("s", "z"), ("i", "y"),
           ("e", "ae"), ("e", "oe"), ("r", "rrh"), ("r", "rh"), ("t", "th"), ("n", "pn"), ("sh", "ch"))
RARER_TYPO = 0.95  # what the rarer of two words a typo is as close to weighs against the commoner
TRIGRAM_MIN = 6  # letters of a word the trigram fallback considers (shorter ones share too little)
TRIGRAM_SIMILARITY = 0.45
TRIGRAM_EDITS = 2  # a long word this close to one sharing its trigrams is taken for it (similar())
TRIGRAM_CANDIDATES = 50
VARIANTS_MEMO = 20_000  # looked-up words a process keeps (emptied when full)
RANKINGS = 5_000  # rankings a process keeps by the query's rewritten words (emptied when full)
PREFIX_WEIGHT = 0.85
INFLECTED_WEIGHT = 0.9  # "walk" -> "walking": the word itself, as the classification writes it
# Parentheses hold nonessential modifiers ("Essential (primary) hypertension"): they match, but
# do not make a description more specific.
_NONESSENTIAL = re.compile(r"\([^)]*\)|\[[^\]]*\]")
# What a title leaves out is not what it is about: "Furuncle of back [any part, except buttock]" is no
# answer to "boil on my buttock", "Serous conjunctivitis, except viral" none to "viral conjunctivitis".
_EXCEPT = re.compile(r"\bexcept\b[^,;)\]]*", re.IGNORECASE)


@dataclass(slots=True)
class CodeRecord:
    code: str
    dotted: str
    description: str
    billable: bool
    chapter: int
    depth: int
    requires_seventh: bool
    seven_char: dict[str, str]
    unspecified: bool


@dataclass
class SearchIndex:
    release_id: int | None
    codes: list[CodeRecord] = field(default_factory=list)
    entry_tokens: list[tuple[str, ...]] = field(default_factory=list)  # distinct; a tuple is 1/3 of a set
    postings: dict[str, set[int]] = field(default_factory=dict)
    ordered: dict[str, list[int]] = field(default_factory=dict)  # the same postings, ascending
    idf: dict[str, float] = field(default_factory=dict)
    vocabulary: list[str] = field(default_factory=list)  # sorted, for prefix matches
    neighbours: dict[str, list[str]] = field(default_factory=dict)  # one-deletion variant -> words
    by_code: dict[str, int] = field(default_factory=dict)
    default_child: dict[int, int] = field(default_factory=dict)  # header -> its "unspecified" code
    bare_headers: frozenset[int] = frozenset()  # headers (not billable, no 7th character) without one
    prior: dict[int, float] = field(default_factory=dict)  # code -> curated nudge (data/priors.csv)
    max_prior: float = 0.0
    sorted_codes: list[str] = field(default_factory=list)
    code_order: list[int] = field(default_factory=list)  # code index -> rank in code order (ties)
    # Entry id -> (code index, content tokens of the entry, and the parts of its score that do not
    # depend on the query: a bonus (billable, unspecified), a malus (an inclusion term, "Other ..."),
    # the curated prior), computed once here rather than per candidate per search, in one tuple (one
    # lookup in the ranking loop). The parts are kept apart so the sums round as one would write them.
    entry_facts: list[tuple[int, int, float, float, float]] = field(default_factory=list)
    # The long words and a trigram -> word numbers map of them, built on first use (see similar()).
    _trigrams: tuple[list[str], dict[str, tuple[int, ...]]] | None = field(default=None, repr=False)
    _variants_memo: dict[tuple[str, bool, bool], dict[str, float]] = field(default_factory=dict, repr=False)
    # search.rank()'s answers by what the query became (its rewritten words, canonical codes, limit,
    # filters): "hbp", "high blood pressure" and "elevated blood pressure" are ranked once. Emptied when full.
    rankings: dict[tuple, list[dict]] = field(default_factory=dict, repr=False)
    # Code index -> the words its title says it is "without" ("... without heart failure"), and those
    # it says it is "with": a query naming the one or the other (or "without" it) is told apart (rank()).
    without: dict[int, tuple[frozenset[str], ...]] = field(default_factory=dict)
    with_: dict[int, tuple[frozenset[str], ...]] = field(default_factory=dict)
    without_words: frozenset[str] = frozenset()  # every word of those, so most queries skip the check
    with_words: frozenset[str] = frozenset()
    # Entry id -> its size counting what its title says it is without (entry_facts has it without).
    full_size: dict[int, int] = field(default_factory=dict)
    external: list[bool] = field(default_factory=list)  # code index -> an external cause (chapter 20)
    # Code index -> the AXES its title says are unspecified ("..., unspecified trimester": trimester).
    unspecifies: dict[int, frozenset[str]] = field(default_factory=dict)
    # Hashes of the essential words of every short title and inclusion term with words in brackets
    # ("Insect bite (nonvenomous) of thigh": insect, bite, thigh): a query naming one is not
    # rewritten (search; one naming a title without brackets is found by its tokens).
    short_names: set[int] = field(default_factory=set)
    mostly_external: frozenset[str] = frozenset()  # words most of whose entries are external causes
    # Entry ids a ranking adjustment after the match may apply to (a title with or without phrases,
    # an unspecified axis, an external cause, an UNASKED word): the ranking tests the rest once.
    adjusted: frozenset[int] = frozenset()

    @classmethod
    def build(cls, release_id: int | None, rows: list[tuple]) -> SearchIndex:
        """The index of `rows` (fetch_search_rows), which it empties as it goes: a worker coding
        dx_text builds this beside its claim memo, and the rows are ~15 MB of the build's peak."""
        index = cls(release_id)
        sites = _body_sites(row[2] for row in rows)
        nos: dict[int, list[frozenset[str]]] = defaultdict(list)
        raw: list[tuple[int, list[str], bool, int, int]] = []
        words: dict[str, str] = {}  # one string object per distinct token (measured: -40 MB)
        empty: dict[str, str] = {}
        for code, dotted, description, billable, chapter, depth, inclusions, seventh, seven, _ in rows:
            position = len(index.codes)
            lowered = description.lower()
            index.codes.append(CodeRecord(code, dotted, description, billable, chapter, depth, seventh,
                                          seven or empty, _unspecified(lowered)))
            index.by_code[code] = position
            if unspecified := AXES.intersection(stem(w) for w in _UNSPECIFIED_WHAT.findall(lowered)):
                index.unspecifies[position] = frozenset(unspecified)
            without, with_ = _qualified(description, sites)  # the title's, for its inclusion terms too
            if without:
                index.without[position] = without
            if with_:
                index.with_[position] = with_
            for term in inclusions:
                if " NOS" in term:  # "Pulmonary embolism NOS" under I26.99: where the Index sends the term
                    nos[position].append(frozenset(tokens(term)) - {"nos"})
            named = [a for t in (description, *inclusions) for a in _ABBREVIATION.findall(t) if _names(a, t)]
            for text, inclusion in ((description, False), *((t, True) for t in (*inclusions, *named))):
                text = _EXCEPT.sub(" ", text) if "xcept" in text else text
                essential = {t for t in tokens(_NONESSENTIAL.sub(" ", text)) if t not in NEUTRAL}
                if 1 < len(essential) <= SHORT_NAME and _NONESSENTIAL.search(text):  # the others match whole
                    index.short_names.add(hash(frozenset(essential)))
                toks = [words.setdefault(t, t) for t in tokens(text)]
                # What a title says it is without ("..., without rupture") is the default, not detail:
                # for a query naming none of it, the entry is no less precise a match ("aortic
                # aneurysm" -> I71.9); a query that names it sees the full size (rank()).
                plain = essential.difference(*without) if without else essential
                raw.append((position, toks, inclusion, max(1, len(plain)), max(1, len(essential))))
        parents = [(r[0], r[9]) for r in rows]
        rows.clear()
        # Entry ids in order of size: the first ids of any candidate set are the most general terms.
        raw.sort(key=lambda e: (e[3], e[2], index.codes[e[0]].code))
        postings: dict[str, set[int]] = defaultdict(set)
        ordered: dict[str, list[int]] = defaultdict(list)
        sized: list[tuple[int, int, bool]] = []  # per entry: code, size, an inclusion term (not the title)
        for entry, (position, toks, inclusion, size, full) in enumerate(raw):
            sized.append((position, size, inclusion))  # entry_facts, below, once the priors are known
            if full != size:
                index.full_size[entry] = full
            index.entry_tokens.append(tuple(dict.fromkeys(toks)))
            for tok in toks:
                if entry not in postings[tok]:
                    postings[tok].add(entry)
                    ordered[tok].append(entry)
        index.postings, index.ordered = dict(postings), dict(ordered)
        index.without_words = frozenset(w for said in index.without.values() for phrase in said for w in phrase)
        index.with_words = frozenset(w for said in index.with_.values() for phrase in said for w in phrase)
        total = len(raw)
        raw.clear()
        index.idf = {t: math.log(1 + total / len(p)) for t, p in postings.items()}
        index.vocabulary = sorted(postings)
        neighbours: dict[str, list[str]] = defaultdict(list)
        for word in index.vocabulary:
            if len(word) >= 4:
                for variant in deletes(word, 1):
                    neighbours[variant].append(word)
        index.neighbours = dict(neighbours)
        index.external = [record.chapter == 20 for record in index.codes]
        index.mostly_external = frozenset(
            word for word, entries in index.postings.items()
            if 2 * sum(index.external[sized[e][0]] for e in entries) > len(entries))
        index.sorted_codes = sorted(index.by_code)
        index.default_child = _default_children(index, parents, nos)
        index.bare_headers = frozenset(
            position for position, record in enumerate(index.codes)
            if not (record.billable or record.requires_seventh) and position not in index.default_child)
        index.prior = _priors(index, synonyms().priors)
        marked = index.with_.keys() | index.without.keys() | index.unspecifies.keys() | {
            position for position, external in enumerate(index.external) if external}
        index.adjusted = frozenset(entry for entry, (position, _, _) in enumerate(sized) if position in marked).union(
            *(index.postings.get(word, ()) for word in UNASKED))
        index.max_prior = max(index.prior.values(), default=0.0)
        index.code_order = [0] * len(index.codes)
        for order, code in enumerate(index.sorted_codes):
            index.code_order[index.by_code[code]] = order
        for position, size, inclusion in sized:
            record = index.codes[position]
            index.entry_facts.append((
                position, size, 0.03 * (record.billable or record.requires_seventh) + 0.03 * record.unspecified,
                0.02 * inclusion + 0.04 * record.description.startswith("Other"), index.prior.get(position, 0.0)))
        return index

    def variants(self, token: str, last: bool, trigrams: bool = True) -> dict[str, float]:
        """See _variants; a word the index does not hold is looked up once a process (a typo costs
        a neighbourhood of deletions, a long one trigrams too), the answer copied for the caller."""
        if token in self.postings and not last:
            return {token: 1.0}
        key = (token, last, trigrams)
        found = self._variants_memo.get(key)
        if found is None:
            found = self._variants(token, last, trigrams)
            if len(self._variants_memo) >= VARIANTS_MEMO:
                self._variants_memo.clear()
            self._variants_memo[key] = found
        return dict(found)

    def _variants(self, token: str, last: bool, trigrams: bool = True) -> dict[str, float]:
        """Index words standing for a query token, with their weight: itself (1.0), its typo
        corrections (closest only), failing those the most similar long word by trigrams (a
        misspelling past two edits, another form of the word: "hypertriglyceridaemia"), and for the
        last token of a query, the words it starts."""
        found: dict[str, float] = {}
        if token in CONTRACTED:
            return found
        if token in self.postings:
            found[token] = 1.0
        elif forms := self._inflected(token):  # a real word, not a typo of another ("walk" is not "wall")
            found.update(dict.fromkeys(forms, INFLECTED_WEIGHT))
        elif sounded := self._sounded(token):  # spelt as it sounds: before a word one edit away
            found.update(dict.fromkeys(sounded, FUZZY_WEIGHT))
        elif (typos := max_typos(token)) and not token.isdigit():
            candidates: set[str] = set()
            for variant in deletes(token, typos):
                candidates.update(self.neighbours.get(variant, ()))
                if variant in self.postings:
                    candidates.add(variant)
            scored = [(edit_distance(token, w, typos), -len(self.postings[w]), w) for w in candidates]
            scored = [s for s in scored if s[0] <= typos]
            if scored:
                best = min(s[0] for s in scored)
                # As close to two words, a typo is more likely of the commoner ("osteoperosis" is
                # osteoporosis far more often than osteopetrosis): the others weigh a little less.
                for rank, (_, _, word) in enumerate(sorted(s for s in scored if s[0] == best)[:3]):
                    found[word] = FUZZY_WEIGHT if rank == 0 else FUZZY_WEIGHT * RARER_TYPO
        if not found and trigrams and len(token) >= TRIGRAM_MIN and not token.isdigit():
            close = self.similar(token)
            if close is not None:
                found[close] = TRIGRAM_WEIGHT
        if last and len(token) >= 3 and not token.isdigit():
            start = bisect.bisect_left(self.vocabulary, token)
            for word in self.vocabulary[start:start + 40]:
                if not word.startswith(token):
                    break
                found.setdefault(word, PREFIX_WEIGHT)
        return found

    def _sounded(self, token: str) -> list[str]:
        """Index words a word spelt as it sounds stands for, one respelling away ("nefropathy":
        nephropathy, not neuropathy one edit away; "bronkitis": bronchitis; "onycomycosis")."""
        found = []
        for heard, written in _SOUNDS:
            at = token.find(heard)
            while at != -1:
                variant = token[:at] + written + token[at + len(heard):]
                if variant in self.postings and variant not in found:
                    found.append(variant)
                at = token.find(heard, at + 1)
        return found

    def _inflected(self, token: str) -> list[str]:
        """The index's -ing and -ed forms of a word it does not hold ("walk": walking, walked;
        "bite": biting; "swim": swimming)."""
        if len(token) < 3 or not token.isalpha():
            return []
        stems = [token, token[:-1]] if token.endswith("e") else [token, token + token[-1]]
        return [form for stem in stems for form in (stem + "ing", stem + "ed") if form in self.postings]

    def similar(self, token: str) -> str | None:
        """The long index word sharing the most trigrams with `token` (Jaccard >= TRIGRAM_SIMILARITY),
        from a trigram map of the long words built on first use (~9,000 words, ~1.5 MB)."""
        if self._trigrams is None:
            long_words = [w for w in self.vocabulary if len(w) >= TRIGRAM_MIN and not w.isdigit()]
            built: dict[str, list[int]] = defaultdict(list)
            for number, word in enumerate(long_words):
                for gram in _grams(word):
                    built[gram].append(number)
            self._trigrams = (long_words, {gram: tuple(ids) for gram, ids in built.items()})
        long_words, grams = self._trigrams
        wanted = _grams(token)
        shared = Counter(chain.from_iterable(grams.get(gram, ()) for gram in wanted))
        # Most shared first, ties by word (Counter.most_common breaks ties by insertion order, which
        # follows the set of trigrams, so by hash seed: a candidate cut off at the 20th or 50th place
        # had been a different word in another process).
        top = heapq.nsmallest(TRIGRAM_CANDIDATES, shared.items(), key=lambda item: (-item[1], item[0]))
        best, best_score = None, TRIGRAM_SIMILARITY
        for number, count in top[:20]:
            word = long_words[number]
            score = count / (len(wanted) + len(_grams(word)) - count)
            if score > best_score or (score == best_score and best is not None and word < best):
                best, best_score = word, score
        if best is None and token not in synonyms().words:
            # Not a word of the curated phrases ("swollen", "trouble": real words, not typos). Two
            # edits from a word it shares a few trigrams with, a transposition among them
            # ("nuemonia", "glocoma", "diareah": few trigrams survive those): the one sharing most.
            close = [(edit_distance(token, long_words[n], TRIGRAM_EDITS), -count, long_words[n])
                     for n, count in top]
            close = [c for c in close if c[0] <= TRIGRAM_EDITS]
            best = min(close)[2] if close else None
        return best

    def position_of(self, code: str) -> int | None:
        """A code's index, a 7-character code's that of its base ("S060X0A" -> S06.0X0, "T189XXA" ->
        T18.9), whose 7th characters the index keeps as options."""
        position = self.by_code.get(code)
        if position is None and len(code) == 7:
            position = self.by_code.get(code[:6].rstrip("X"))
        return position

    def code_prefix(self, prefix: str, limit: int) -> list[int]:
        """Codes starting with `prefix`, in code order (the code itself first)."""
        codes = self.sorted_codes
        start = bisect.bisect_left(codes, prefix)
        end = bisect.bisect_left(codes, prefix + "\x7f", start, min(len(codes), start + limit))  # no copy of the list
        return [self.by_code[code] for code in codes[start:end]]

    def seventh_for(self, record: CodeRecord, query: set[str]) -> tuple[str, str]:
        """The 7th character a query asks for (its encounter words), else the initial encounter."""
        options = record.seven_char or {"A": "initial encounter"}
        wanted = query & ENCOUNTER
        if "follow" in query:  # a follow-up visit after the injury's active treatment is a subsequent one
            wanted = wanted | {"subsequent"}
        best = ("A" if "A" in options else next(iter(options)), 0)
        if wanted:
            for char, text in options.items():
                overlap = len(wanted & _option_tokens(text))
                if overlap > best[1]:
                    best = (char, overlap)
        char = best[0]
        return record.code.ljust(6, "X") + char, options.get(char, "")


_WITHOUT = re.compile(r"\b(?:without|not) ([^,()\[\]]+?)(?=\bwith\b|,|\(|\[|$)")  # "not intractable" too
_WITH = re.compile(r"\bwith ([^,()\[\]]+?)(?=\bwith|,|\(|\[|$)")


_UNSPECIFIED_WHAT = re.compile(r"\bunspecified ([a-z]+)")
AXES = frozenset({"trimester", "degree", "stage"})  # what a query may say which of, by an ordinal
_ABBREVIATION = re.compile(r"\(([A-Z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)?)\)")


def _names(abbreviation: str, title: str) -> bool:
    """Whether the classification's own abbreviation in a title names what the title is, so that it
    alone finds the code: the initials of every word before it are its letters in order, from its
    first ("Systemic inflammatory response syndrome (SIRS) of ...", "Non-ST elevation (NSTEMI) ...").
    One naming a part of the title does not ("High risk human papillomavirus (HPV) DNA test
    positive", "Personal history of transient ischemic attack (TIA)")."""
    if sum(ch.isupper() for ch in abbreviation) < 2 or abbreviation.lower() in _WORDS:
        return False
    before = title[:title.index(f"({abbreviation})")].lower()
    initials = [w[0] for w in re.split(r"[\s\-/]+", before) if w and w not in _LINKING]
    letters = iter(abbreviation.lower())
    return bool(initials) and initials[0] == abbreviation[0].lower() and all(i in letters for i in initials)


_LINKING = frozenset({"of", "and", "with", "the", "in", "to", "for"})
# Abbreviations that are also everyday words ("hit by a car" is no heparin induced thrombocytopenia).
_WORDS = frozenset({"nos", "hit", "tad", "mash", "lac", "all", "aid", "its", "add"})


# Injury titles name a body site after "of" and nothing else there: the classification's own list of
# sites ("Contusion of scalp", "Abrasion of lower back and pelvis"), with the lay sites and sides.
_SITE_TITLE = re.compile(r"^(?:contusion|abrasion|laceration without foreign body|puncture wound without foreign "
                         r"body|blister \(nonthermal\)|external constriction) of ([^,]+?)(?= with|,|$)")
_PLACE = frozenset({"lower", "upper", "other", "part", "site", "sites", "multiple", "extremity", "unspecified"})


_STATED_COMPLICATIONS = re.compile(r"(?<=, )(ruptured|perforated)\b")


def _body_sites(descriptions) -> frozenset[str]:
    found = set(SITES | SIDES | _PLACE)
    for description in descriptions:
        if match := _SITE_TITLE.match(description.lower()):
            found.update(tokens(match.group(1)))
    return frozenset(found)


def _qualified(text: str, sites: frozenset[str] = frozenset()) -> tuple[tuple[frozenset[str], ...],
                                                                          tuple[frozenset[str], ...]]:
    """What a title says it is without, and what it says it is with, as word sets ("Hypertensive heart
    disease without heart failure" -> ({heart, failure},), ()); "or" and "and" part them. The body
    site a phrase ends on is where, not what: "Laceration without foreign body of scalp" is without
    {foreign, body}, so "scalp laceration" is that code, not the one with a foreign body."""
    lowered = text.lower().replace("not associated with", "without")  # N64.3 galactorrhea, not childbirth
    # A complication a title names as a state (", ruptured": I71.30) is as much a "with" as one named
    # after "with": a query that does not say it wants the code without it (I71.40, "without rupture").
    stated = tuple(frozenset({w}) for w in _STATED_COMPLICATIONS.findall(lowered)) if " without " not in lowered else ()
    if " with" not in lowered and " not " not in lowered:
        return (), stated
    # Less its nonessential words: "with (acute) exacerbation" is with exacerbation (J44.1), so "COPD
    # without exacerbation" is not that code.
    lowered = " ".join(_NONESSENTIAL.sub(" ", lowered).split())
    return _phrases(_WITHOUT.findall(lowered), sites), _phrases(_WITH.findall(lowered), sites) + stated


def _phrases(found: list[str], sites: frozenset[str]) -> tuple[frozenset[str], ...]:
    parts = (_what(part, sites) - NEUTRAL for text in found for part in re.split(r" or | and ", text))
    return tuple(dict.fromkeys(part for part in parts if part))


def _what(phrase: str, sites: frozenset[str]) -> frozenset[str]:
    """The words of a phrase less the body site it names after "of" ("loss of consciousness" keeps all)."""
    head, of, tail = phrase.partition(" of ")
    if not of:
        return frozenset(tokens(phrase))
    rest = [t for t in tokens(tail) if t not in sites]
    return frozenset(tokens(head)).union(rest)


def _grams(word: str) -> set[str]:
    padded = f"^{word}$"
    return {padded[i:i + 3] for i in range(len(padded) - 2)}


@lru_cache(maxsize=256)
def _option_tokens(text: str) -> frozenset[str]:
    """Tokens of a 7th-character option ("subsequent encounter for fracture with routine healing")."""
    return frozenset(tokens(text))


def _default_children(index: SearchIndex, parents: list[tuple[str, str | None]],
                      nos: dict[int, list[frozenset[str]]]) -> dict[int, int]:
    """For a header code (not billable, no 7th character), the billable code a term without detail
    goes to: the "unspecified" child, followed down ("J18" -> "J18.9", "S62.10" -> "S62.109")."""
    children: dict[int, list[int]] = defaultdict(list)
    for code, parent in parents:
        if parent in index.by_code and code in index.by_code:
            children[index.by_code[parent]].append(index.by_code[code])
    for kids in children.values():
        _unspecified_complications(index, kids)
    defaults: dict[int, int] = {}
    for header in children:
        record = index.codes[header]
        if record.billable or record.requires_seventh:
            continue
        current, seen = header, 0
        while current in children and seen < 4:
            step = _default_step(index, current, children[current], nos)
            if step is None:
                break
            current = step
            seen += 1
        if current != header and (index.codes[current].billable or index.codes[current].requires_seventh):
            defaults[header] = current
    return defaults


def _unspecified_complications(index: SearchIndex, kids: list[int]) -> None:
    """Siblings: one "with unspecified complications" beside one "without complications" (E08.8,
    E08.9) has a complication, only not specified; the no-detail code is the one without, so the
    other is not marked unspecified (no bonus, not the default child)."""
    descriptions = [index.codes[k].description.lower() for k in kids]
    if any(" without " in d for d in descriptions):
        for kid, lowered in zip(kids, descriptions, strict=True):
            if " with unspecified " in lowered and not _unspecified(_WITH_UNSPECIFIED.sub("", lowered)):
                index.codes[kid].unspecified = False


def _default_step(index: SearchIndex, header: int, kids: list[int],
                  nos: dict[int, list[frozenset[str]]]) -> int | None:
    """The child a term without detail goes to, one level down, as the Alphabetic Index sends an NOS
    term: the one child that lists the term "NOS" among its inclusion terms (I26.9 -> I26.99 "Other
    pulmonary embolism ...", which lists "Pulmonary embolism NOS", not I26.90 "Septic ..."; S06.0X ->
    S06.0XA, which lists "Concussion NOS"); failing one, the "unspecified" child (by convention its
    last character is 9, or 0), one "without" a complication before one "with"; failing that, the
    accidental one of a poisoning's intents; failing that, the child "without" the complication its
    siblings add ("Graves' disease" -> E05.00, "... without thyrotoxic crisis"; "ketoacidosis" ->
    E11.10, "... without coma"); failing that, "Other ..." as the 8 ("Ascites" -> R18.8, beside
    "Malignant ascites"), or the one 9 that says "other" (the residual, NEC)."""
    codes = index.codes
    description = codes[header].description
    title = frozenset(tokens(description))
    # Of a header that lists things, the term is its whole concept, not one of them: "Nausea NOS"
    # (R11.0) is not what R11 "Nausea and vomiting" sends to, nor "Benign neoplasm of anus NOS" D12's.
    core = (title.difference(*index.without.get(header, ()), NEUTRAL, {"without"})
            if " and " in description or ", " in description else frozenset())
    named = [k for k in kids if any(core <= term - NEUTRAL and term <= title for term in nos.get(k, ()))]
    if len(named) == 1:
        return named[0]
    # "With" what the header is not (B27.99 "..., unspecified with other complication"); "with
    # rheumatoid factor" under M05 "Rheumatoid arthritis with rheumatoid factor" is the header's own.
    said = _WITH_COMPLICATION.findall(description)
    adds = {k: _with_only(codes[k].description, said) for k in kids}
    unspecified = [k for k in kids if codes[k].unspecified]
    if all(adds[k] for k in unspecified) and any(" without " in codes[k].description for k in kids):
        unspecified = []  # K43: K43.9 "... without obstruction or gangrene", not "Other and unspecified ... with"
    if unspecified:
        # Most "unspecified" first: C85.90 "..., unspecified, unspecified site" before C85.99 "..., extranodal".
        return min(unspecified, key=lambda k: (-codes[k].description.lower().count("unspecified"), adds[k],
                                               codes[k].code[-1] != "9", codes[k].code[-1] != "0",
                                               len(codes[k].description), codes[k].code))
    # A poisoning or toxic effect whose intent is not documented is coded accidental (guidelines
    # I.C.19.e.5.b): "bee sting" -> T63.441, "Toxic effect of venom of bees, accidental (unintentional)".
    accidental = [k for k in kids if codes[k].description.endswith("accidental (unintentional)")]
    if len(accidental) == 1:
        return accidental[0]
    without = [k for k in kids if " without " in codes[k].description]
    if without:  # the fewest "with": K42.9 "... without obstruction or gangrene", not K42.0 "with obstruction"
        return min(without, key=lambda k: (-codes[k].description.count(" without "),
                                           codes[k].description.count(" with "), codes[k].code[-1] != "0",
                                           len(codes[k].description), codes[k].code))
    other = [k for k in kids if codes[k].description.startswith("Other ") and codes[k].code[-1] == "8"]
    if len(other) == 1:
        return other[0]
    # The residual child, NEC, as the last character 9 (I21.1 "STEMI of inferior wall" -> I21.19
    # "... involving other coronary artery of inferior wall", beside I21.11 "... right coronary artery").
    other = [k for k in kids if " other " in f" {codes[k].description.lower()} " and codes[k].code[-1] == "9"]
    return other[0] if len(other) == 1 else None


def _priors(index: SearchIndex, priors: dict[str, float]) -> dict[int, float]:
    """Each code's nudge from its longest listed prefix."""
    found = {}
    for position, record in enumerate(index.codes):
        for n in range(len(record.code), 0, -1):
            if record.code[:n] in priors:
                found[position] = priors[record.code[:n]]
                break
    return found


_WITH_UNSPECIFIED = re.compile(r"\bwith unspecified [^,]*")


def _with_only(description: str, said: list[str]) -> bool:
    """A title "with" a complication (not one `said` by its header; "associated with" is none) and
    "without" none."""
    return " without " not in description and any(w not in said for w in _WITH_COMPLICATION.findall(description))


_WITH_COMPLICATION = re.compile(r"(?<!associated) with [^,(]+")


def _unspecified(lowered: str) -> bool:
    """Whether a description says it is the no-detail code ("..., unspecified", "NOS", "not
    specified as recurrent")."""
    return "unspecified" in lowered or " nos" in lowered or "not specified" in lowered
