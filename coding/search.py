"""Code search: code prefixes, words in any order, inclusion terms, curated synonyms, typo tolerance,
scored in [0, 1] with the generic ("unspecified") code first for an unqualified term.

`search()` is the entry point (validation, cache, index); `rank()` is the pure ranking function.
"""

from __future__ import annotations

import gc
import heapq
import re
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import chain, combinations, islice
from operator import itemgetter

from sqlalchemy.engine import Connection

from cache.announce import announced
from cache.client import Cache
from cache.tags import cache_key, kind_prefix, tags_for
from cache.writer import write_behind
from coding.index import AXES, RANKINGS, UNASKED, CodeRecord, SearchIndex
from coding.normalize import CODE_RE, dotted, fold, has_control_chars, normalize_code
from coding.terms import (
    DESCRIPTOR_WEIGHT,
    DESCRIPTORS,
    EMPHASIS,
    ENCOUNTER,
    FRAMING,
    NARROWING,
    NEUTRAL,
    SIDES,
    SITE_WEIGHT,
    SITES,
    WHEN,
    Synonyms,
    query_tokens,
    stem,
    synonyms,
)
from db.codes import active_release_id, fetch_search_rows

MAX_QUERY = 200
MAX_LIMIT = 100
SEARCH_TTL = 6 * 3600
MAX_CANDIDATES = 400
COUNT_WINDOW = 20000  # entries per token considered when no entry holds every token
MAX_SUBSET_TOKENS = 5  # up to this many tokens, those held by the most are found by intersecting subsets
ALTERNATIVE_WEIGHT = 0.9
FRAMING_MISS = 0.6
CONTRADICTION = 0.8
UNASKED_KIND = 0.95  # an entry naming one of UNASKED for a query that does not
UNASKED_WITH = 0.97  # a title "with" a complication the query does not name: the plain code first
WEAK_PREFERRED = 0.85  # a canonical code of the query without its lay sites (search_index)
CONDITION_MISS = 0.6  # an entry holding none of the words of such a query's condition ("gout right toe": a sprain)
# Words that leave a term's canonical code as it is: about the patient, "unspecified", "encounter for".
_NOT_TYPED = DESCRIPTORS | NEUTRAL  # a last word that is not one being typed ("nos" is no "nose")
_FILLER = _NOT_TYPED | EMPHASIS | {"encounter", "symptom"}
_UNSAID = frozenset({"unspecified", "nos"})
_ABOUT_THE_PATIENT = DESCRIPTORS | EMPHASIS
EXTERNAL = 0.95  # an external cause (V00-Y99) is not the diagnosis: "concussion from football" is S06
HEADER = 0.05  # what a header (no billable code) gives up to the codes beneath it
UNSPECIFIED_AXIS = 0.05  # the unspecified code's bonus, and a little more, when the query specifies that axis
_ORDINALS = frozenset({"first", "second", "third", "fourth", "1st", "2nd", "3rd", "1", "2", "3", "4", "5"})
MIN_SCORE = 0.25  # below this a result shares little more than a common word with the query
RELEASE_CHECK_SECONDS = 10.0
# Words that choose the 7th character rather than the code ("open"/"closed" also name conditions).
SEVENTH_ONLY = ENCOUNTER - {"open", "closed"}
_ALSO_CONDITIONS = frozenset({"delayed", "routine"})


class SearchError(ValueError):
    """Bad search input; `code` is the error envelope's code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Query:
    text: str  # folded, as logged and cached
    limit: int = 10
    chapter: int | None = None
    billable: bool | None = None


def parse_query(q: str | None, limit: str | int | None = None, chapter: str | int | None = None,
                billable: str | bool | None = None) -> Query:
    """Validate raw parameters; raises SearchError with a clear message."""
    if q is None or not q.strip():
        raise SearchError("EMPTY_QUERY", "q is required: a code, a code prefix or words")
    if len(q) > MAX_QUERY:
        raise SearchError("QUERY_TOO_LONG", f"q is limited to {MAX_QUERY} characters")
    if has_control_chars(q) or "\ufffd" in q:
        raise SearchError("INVALID_QUERY", "q contains control characters or invalid UTF-8")
    text = fold(q)
    if not query_tokens(text) and not CODE_RE.match(normalize_code(text)):
        raise SearchError("INVALID_QUERY", "q has no searchable words or code")
    return Query(text, _int(limit, "limit", 10, 1, MAX_LIMIT), _chapter(chapter), _flag(billable))


def _int(raw, name: str, default: int, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise SearchError("INVALID_PARAMETER", f"{name} must be an integer") from None
    if not low <= value <= high:
        raise SearchError("INVALID_PARAMETER", f"{name} must be between {low} and {high}")
    return value


def _chapter(raw) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return _int(raw, "chapter", 0, 1, 22)
    except SearchError:
        raise SearchError("UNKNOWN_CHAPTER", "chapter must be an ICD-10-CM chapter number, 1 to 22") from None


def _flag(raw) -> bool | None:
    if raw is None or raw == "" or isinstance(raw, bool):
        return raw if isinstance(raw, bool) else None
    value = str(raw).lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise SearchError("INVALID_PARAMETER", "billable must be true or false")


def _keep(record: CodeRecord, query: Query) -> bool:
    if query.chapter is not None and record.chapter != query.chapter:
        return False
    if query.billable is None:
        return True
    return (record.billable or record.requires_seventh) == query.billable


def _present(index: SearchIndex, position: int, score: float, words: set[str]) -> dict:
    record = index.codes[position]
    if record.requires_seventh:
        code, seventh = index.seventh_for(record, words)
        return {"code": f"{code[:3]}.{code[3:]}", "description": f"{record.description}, {seventh}",
                "billable": True, "score": round(score, 4), "chapter": record.chapter}
    return {"code": record.dotted, "description": record.description, "billable": record.billable,
            "score": round(score, 4), "chapter": record.chapter}


def _code_results(index: SearchIndex, query: Query) -> list[dict] | None:
    """A query that is a code or a code prefix: the code first, then its descendants."""
    code = normalize_code(query.text)
    if not CODE_RE.match(code):
        return None
    if len(code) == 7 and code not in index.by_code:  # a 7th-character code: its base is indexed
        base = index.by_code.get(code[:6].rstrip("X"))
        if base is not None and code[6] in index.codes[base].seven_char:
            record = index.codes[base]
            if not _keep(record, query):
                return []
            text = record.seven_char[code[6]]
            return [{"code": f"{code[:3]}.{code[3:]}", "description": f"{record.description}, {text}",
                     "billable": True, "score": 1.0, "chapter": record.chapter}]
    found = [p for p in index.code_prefix(code, 2000) if _keep(index.codes[p], query)]
    if not found:
        return None if query_tokens(query.text) else []
    scored = [(1.0 if index.codes[p].code == code else 0.9 - 0.02 * (index.codes[p].depth - 1), p) for p in found]
    scored.sort(key=lambda s: (-s[0], index.codes[s[1]].code))
    return [_present(index, p, s, set()) for s, p in scored[:query.limit]]


def _candidates(index: SearchIndex, variants: list[dict[str, float]]) -> list[int]:
    """Up to MAX_CANDIDATES entries, most general first (entry ids are in order of size): those
    holding every matched token, failing that those holding the most."""
    matched = [found for found in variants if found]
    if len(matched) == 1:  # one word: the first ids of its postings are the most general entries
        return _ascending(index, matched[0], MAX_CANDIDATES)
    sets = [index.postings[next(iter(found))] if len(found) == 1
            else set().union(*(index.postings[v] for v in found)) for found in matched]
    if not sets:
        return []
    smallest = sorted(sets, key=len)
    both = smallest[0].intersection(*smallest[1:]) if len(sets) > 1 else sets[0]
    if both:
        return heapq.nsmallest(MAX_CANDIDATES, both) if len(both) > MAX_CANDIDATES else sorted(both)
    best = _held_by_most(index, matched, sets, MAX_CANDIDATES // 2)
    # And each word's own most general entries: taken by size alone, the best of a rare word (the
    # condition of "insomnia chronic") were crowded out by those of a common one ("chronic").
    share = max(1, MAX_CANDIDATES // (2 * len(matched)))
    return sorted(set(best).union(*(_ascending(index, found, share) for found in matched)))


def _held_by_most(index: SearchIndex, matched: list[dict[str, float]], sets: list, limit: int) -> list[int]:
    """The first `limit` entry ids (ascending) holding the most of the query's tokens, where none
    holds them all; a token with more than COUNT_WINDOW entries counts only its first COUNT_WINDOW.

    Found with set intersections, which run in C (the tokens of m-subsets, largest m first), and
    only their few results looked at in Python: counting every entry of every token and then
    walking the counts for the most (Counter) cost ~0.3 ms a query, for hundreds to thousands of
    entries of which a handful were kept."""
    if len(sets) > MAX_SUBSET_TOKENS:  # too many subsets to try: count (in C) and walk the counts
        counts = Counter(chain.from_iterable(
            _ascending(index, found, COUNT_WINDOW) if len(entries) > COUNT_WINDOW else entries
            for found, entries in zip(matched, sets, strict=True)))
        most = max(counts.values())
        return heapq.nsmallest(limit, (e for e, c in counts.items() if c == most))
    # An entry is within a token's window if the token has it and it is no later than the window's last.
    last = [None if len(entries) <= COUNT_WINDOW else _ascending(index, found, COUNT_WINDOW)[-1]
            for found, entries in zip(matched, sets, strict=True)]
    by_size = sorted(range(len(sets)), key=lambda i: len(sets[i]))
    for m in range(len(sets) - 1, 1, -1):
        held: set[int] = set()
        for subset in combinations(by_size, m):  # each subset smallest first: intersections start small
            shared = sets[subset[0]].intersection(*(sets[i] for i in subset[1:]))
            bounds = [bound for i in subset if (bound := last[i]) is not None]
            held.update(shared if not bounds else [e for e in shared if e <= min(bounds)])
        if held:
            return heapq.nsmallest(limit, held) if len(held) > 8 * limit else sorted(held)[:limit]
    # No two tokens share an entry: the first of each token's own, together.
    return sorted(set().union(*(_ascending(index, found, limit) for found in matched)))[:limit]


def _ascending(index: SearchIndex, found: dict[str, float], limit: int) -> list[int]:
    """The first `limit` entry ids holding any of a token's words, ascending, without duplicates.
    Sorting the lists' heads together runs in C (Timsort merges the sorted runs), where heapq.merge
    stepped in Python: 3-4x faster for a last token that starts 25 words ("gas")."""
    if len(found) == 1:
        return index.ordered[next(iter(found))][:limit]
    merged = sorted(chain.from_iterable(index.ordered[v][:limit] for v in found))
    return list(islice(dict.fromkeys(merged), limit))


def _checks(variants: list[dict[str, float]], weights: list[float]) -> list[tuple[tuple[str, ...], tuple[float, ...]]]:
    """Per query token: its index words, strongest first, each with weight x strength."""
    checks = []
    for found, weight in zip(variants, weights, strict=True):
        ordered = sorted(found.items(), key=lambda kv: -kv[1])
        checks.append((tuple(v for v, _ in ordered), tuple(weight * s for _, s in ordered)))
    return checks


def rank(index: SearchIndex, words: Sequence[str], query: Query, preferred: Sequence[str] = (),
         weak: Sequence[str] = (), left_out: frozenset[str] = frozenset()) -> list[dict]:
    """Score entries for the query words; one result per code, best first. `preferred` codes (the
    curated canonical codes of the query) come first; `weak` ones (those of the query without the
    words `left_out`: its lay sites, or all but a framing word) score WEAK_PREFERRED where no entry
    holds one of those words beside one of the others.

    A ranking depends on nothing else, so queries written differently that became the same words
    share it (a third of the evaluation phrases do: lay words, abbreviations, misspellings)."""
    key = (tuple(words), query.limit, query.chapter, query.billable, tuple(preferred), tuple(weak), left_out)
    rankings = index.rankings
    found = rankings.get(key)
    if found is None:
        found = _rank(index, words, query, preferred, weak, left_out)
        if len(rankings) >= RANKINGS:
            rankings.clear()
        rankings[key] = found
    return found


def _rank(index: SearchIndex, words: Sequence[str], query: Query, preferred: Sequence[str],
          weak: Sequence[str], left_out: frozenset[str]) -> list[dict]:
    # "delayed" and "routine" choose the 7th character only beside "healing" ("delayed puberty" is E30.0).
    seventh = SEVENTH_ONLY if "healing" in words else SEVENTH_ONLY - _ALSO_CONDITIONS
    # "Unspecified" and "NOS" in a query say no more than their absence would; matched, they had made
    # "unspecified subluxation of right hip" as close as "... of unspecified hip".
    terms = [w for w in words if w not in seventh and w not in _UNSAID] or list(words)
    table = synonyms()
    site_only = all(t in NARROWING or t in DESCRIPTORS for t in terms)  # "knee": the site is the query
    # The last word may be a word being typed ("diab"), unless it is about the patient or "NOS" ("nose").
    variants = [_with_alternatives(index, index.variants(w, last=i == len(terms) - 1 and w not in _NOT_TYPED),
                                   table.alternatives) for i, w in enumerate(terms)]
    weights = [_idf(index, found) * _term_weight(term, site_only) for found, term in zip(variants, terms, strict=True)]
    total = sum(weights) or 1.0
    checks = _checks(variants, weights)
    # A query's framing words (terms.FRAMING): an entry holding none of a framing word's index words
    # keeps FRAMING_MISS of its score (a bound the early stop can still rely on: scores only fall).
    framing = tuple(candidates for (candidates, _), term in zip(checks, terms, strict=True)
                    if term in FRAMING and candidates)
    query_words = frozenset(word for found in variants for word in found)
    filtered = query.chapter is not None or query.billable is not None
    # Most candidates share the same few query words and sizes: score each (words, size) once.
    partial: dict[tuple[frozenset[str], int], float] = {}
    entry_tokens, entry_facts = index.entry_tokens, index.entry_facts
    best: dict[int, float] = {}
    ceiling = _Ceiling(checks, total, index.max_prior)
    last_size = 0
    # "with" and "without": a title without what the query names, or with what it says it is without.
    negative = "without" in words
    core = frozenset(terms) - {"without"}
    # Codes whose title says it is without (with, for a query saying "without") one of its words.
    said = index.with_ if negative else index.without
    qualified = len(core) > 1 and not core.isdisjoint(index.with_words if negative else index.without_words)
    # And for a query saying "without", a title without what it names before that ("intractable
    # epilepsy without status": not G40.909, "..., not intractable, without status epilepticus").
    named = frozenset(words[:list(words).index("without")]) if negative else frozenset()
    named_qualified = bool(named) and not named.isdisjoint(index.without_words)
    # Kinds of code the query did not ask for (UNASKED).
    unasked = [index.postings.get(w, ()) for w in UNASKED if w not in query_words]
    with_, without, full_size = index.with_, index.without, index.full_size
    external, adjusted = index.external, index.adjusted
    # The query says which trimester, degree or stage ("first trimester"): a title leaving it
    # "unspecified" is the lesser match, though it holds the ordinal elsewhere ("first pregnancy").
    unspecifies = index.unspecifies
    specified = AXES.intersection(terms) if not _ORDINALS.isdisjoint(terms) else frozenset()
    # A query naming a condition (a word mostly of chapters 1-19, 21) wants its code before the cause's.
    condition = any(found and index.mostly_external.isdisjoint(found) for found, _ in checks)
    # Whether some entry holds a word `weak` was found without beside one of the others: then the
    # canonical code standing in for "condition + site" (or "vaccine + which") is not needed.
    covered = False
    # Left out only a side, the weak code stands for the condition at its site: an entry covers it by
    # holding the side with all of the rest ("edema of left orbit" does not cover "edema of left leg").
    holds = all if left_out and left_out <= SIDES else any
    left_checks: list[tuple[str, ...]] = []
    other_checks: list[tuple[str, ...]] = []
    for (found, _), term in zip(checks, terms, strict=True) if weak else ():
        if found:
            (left_checks if term in left_out else other_checks).append(found)
    for entry in _candidates(index, variants):
        position, size, bonus, malus, prior = entry_facts[entry]
        if size != last_size:  # candidates come in order of size: a new size may rule out the rest
            last_size = size
            if len(best) >= query.limit and ceiling.below_top(size, best, index.default_child, query.limit):
                break
        if filtered and not _keep(index.codes[position], query):
            continue
        if entry in full_size and any(not phrase.isdisjoint(query_words) for phrase in without[position]):
            key = (query_words.intersection(entry_tokens[entry]), full_size[entry])  # names what it is without
        else:
            key = (query_words.intersection(entry_tokens[entry]), size)
        score = partial.get(key)
        if score is None:
            score = partial[key] = _match_score(checks, key[0], key[1], total)
            if framing and any(key[0].isdisjoint(words) for words in framing):
                score = partial[key] = score * FRAMING_MISS
            if weak and not covered and score >= MIN_SCORE:  # the site with some of the condition
                covered = (any(not key[0].isdisjoint(found) for found in left_checks)
                           and holds(not key[0].isdisjoint(found) for found in other_checks))
            if other_checks and all(key[0].isdisjoint(found) for found in other_checks):
                score = partial[key] = score * CONDITION_MISS  # the site without the condition
        score = score + bonus - malus + prior
        if entry in adjusted:  # most entries are not: one test instead of five
            if qualified and position in said:
                score *= _contradiction(said[position], core)
            if named_qualified and position in without:
                score *= _contradiction(without[position], named)
            for marked in unasked:
                if entry in marked:
                    score *= UNASKED_KIND
            if position in with_ and any(phrase.isdisjoint(query_words) for phrase in with_[position]):
                score *= UNASKED_WITH  # "umbilical hernia": K42.9 (without obstruction), not K42.0 (with)
            if condition and external[position]:
                score *= EXTERNAL
            if specified and position in unspecifies and not unspecifies[position].isdisjoint(specified):
                score -= UNSPECIFIED_AXIS  # "first trimester": not "..., unspecified trimester"
        if score > 0.97:
            score = 0.97  # above is kept for the curated canonical codes
        if score > best.get(position, 0.0):
            best[position] = score
    defaults = index.default_child
    for header in defaults.keys() & best.keys():  # a default child is billable, never a header itself
        score, child = best[header], defaults[header]
        if _keep(index.codes[child], query):
            boost = score + 0.01
            if qualified and child in said:  # "GERD with esophagitis": not K21.9
                boost *= _contradiction(said[child], core)
            if named_qualified and child in without:
                boost *= _contradiction(without[child], named)
            best[child] = max(best.get(child, 0.0), boost)
        best[header] = score - HEADER
    # A header with no default child still ranks after what can be billed ("melanoma of back": C43.59,
    # then C43.5). (frozenset.intersection(dict) walks the dict; `&` with its keys walked the frozenset.)
    for header in index.bare_headers.intersection(best):
        best[header] -= HEADER
    for top, listed in ((1.0, preferred), (WEAK_PREFERRED, () if covered else weak)):
        for rank_, code in enumerate(listed):
            at = index.position_of(code)
            if at is not None and _keep(index.codes[at], query):
                best[at] = max(best.get(at, 0.0), top - 0.01 * rank_)
    asked = set(words)
    return [_present(index, p, min(1.0, max(0.0, score)), asked) for p, score in _top(index, best, query.limit)]


def _idf(index: SearchIndex, found: dict[str, float]) -> float:
    """A query word's weight: the idf of its strongest index words (the word itself when the index
    has it), not of a rare word it merely starts ("chronic" is not as rare as "chronicum"), times
    their strength (a word the index has only as a typo's correction counts for less)."""
    if not found:
        return 4.0
    strongest = max(found.values())  # below 1 for a word known only by a typo: it counts for less
    return strongest * max(index.idf[v] for v, strength in found.items() if strength == strongest)


def _term_weight(term: str, site_only: bool) -> float:
    if term in DESCRIPTORS or term in EMPHASIS:
        return DESCRIPTOR_WEIGHT
    return SITE_WEIGHT if term in NARROWING and not site_only else 1.0


def _contradiction(phrases: tuple[frozenset[str], ...], core: frozenset[str]) -> float:
    """CONTRADICTION for a code whose title says it is without what the query names (or, for a query
    saying "without", with it): one of its phrases all among the query's words; else 1."""
    return CONTRADICTION if any(phrase <= core for phrase in phrases) else 1.0


class _Ceiling:
    """The most any entry of a given size could still score, and whether that is below the results
    already found: candidates come in order of size, and a larger entry matches the query no better
    (precision falls with size), so once it cannot reach the `limit`-th score so far the rest are
    skipped. Exact: the same results as scoring every candidate (the rest rank below the top)."""

    def __init__(self, checks, total: float, max_prior: float) -> None:
        self.match = sum(strengths[0] for _, strengths in checks if strengths) / total  # each token's best
        self.hits = sum(1 for _, strengths in checks if strengths)
        self.extra = 0.06 + max(0.0, max_prior)  # the largest bonus, no malus, the largest prior

    def bound(self, size: int) -> float:
        partial = self.match ** 1.5 * (0.62 + 0.3 * min(1.0, self.hits / size))
        return min(0.97, partial + self.extra) + 0.01 + 1e-9  # + 0.01: a header's default child

    def below_top(self, size: int, best: dict[int, float], defaults: dict[int, int], limit: int) -> bool:
        bound = self.bound(size)
        if bound >= max(best.values()):
            return False
        # Each position ends at least this high (a header itself loses HEADER to its child).
        floor = heapq.nlargest(limit, [s - HEADER if p in defaults else s for p, s in best.items()])[-1]
        return bound < floor


def _top(index: SearchIndex, best: dict[int, float], limit: int) -> list[tuple[int, float]]:
    """The `limit` best (code, score) at or above MIN_SCORE, ties in code order. Sorting by score
    alone runs in C; only the head (and whatever ties its last score) is ordered in Python."""
    ranked = sorted(best.items(), key=itemgetter(1), reverse=True)
    end = min(limit, len(ranked))
    while 0 < end < len(ranked) and ranked[end][1] == ranked[end - 1][1]:
        end += 1
    order = index.code_order
    head = sorted((item for item in ranked[:end] if item[1] >= MIN_SCORE), key=lambda item: (-item[1], order[item[0]]))
    return head[:limit]


def _match_score(checks: list[tuple[tuple[str, ...], tuple[float, ...]]], present: frozenset[str],
                 size: int, total: float) -> float:
    """The query-dependent part of an entry's score: how much of the query it holds (each query
    token by its strongest index word present), and how little else."""
    matched = hits = 0.0
    for candidates, strengths in checks:
        for word, strength in zip(candidates, strengths, strict=True):
            if word in present:
                matched += strength
                hits += 1
                break
    precision = min(1.0, hits / size)
    return (matched / total) ** 1.5 * (0.62 + 0.3 * precision)


def _with_alternatives(index: SearchIndex, found: dict[str, float],
                       alternatives: dict[str, tuple[str, ...]]) -> dict[str, float]:
    for word, strength in list(found.items()):
        for alternative in alternatives.get(word, ()):
            if alternative in index.postings:
                found.setdefault(alternative, strength * ALTERNATIVE_WEIGHT)
    return found


def search_index(index: SearchIndex, query: Query) -> list[dict]:
    """Rank a validated query against an index (no cache, no database)."""
    coded = _code_results(index, query)
    if coded is not None:
        return coded
    table = synonyms()
    text, of_relative = _about_a_relative(_said_plainly(query.text))
    text = _joined(index, text) if "-" in text else text
    toks = _split_alphanumeric(index, table, query_tokens(text))
    toks = _lay_typos(index, table, toks)
    # "i need a physical": the visit is the physical; unless a curated phrase takes the asking too
    # ("i want to quit smoking" is counseling, where "quit smoking" is a former smoker).
    if len(toks) > 2 and toks[0] == "i" and toks[1] in _ASKING and toks[1] in table.rewrite(toks):
        toks = toks[2:]
    toks = _negatives_dropped(table, _before_rule_out(_no_is_without(toks)))
    words = _split_compounds(index, table.rewrite(toks))
    preferred = _preferred(table, words)
    if (measured := _bmi_code(index, query)) is not None:
        named = [t for t in toks if t not in _BMI_WORDS and not t[:1].isdigit()]
        if preferred is None and not named:
            return _first(index, measured, rank(index, words, query), query)
        # "morbid obesity bmi 41": the condition first, its BMI next (guideline I.B.14).
        ranked = rank(index, words, query, preferred) if preferred else _rank_part(index, table.rewrite(named), query)
        if not ranked:
            return _first(index, measured, [], query)
        after = _first(index, measured, ranked[1:], query)
        after[0]["score"] = ranked[0]["score"]
        return ranked[:1] + after[:query.limit - 1]
    weak, left_out = _weak_preferred(table, words) if preferred is None else ((), frozenset())
    if preferred is None and words != toks and _names_an_entry(index, toks):
        words = toks  # "postpartum depression" is a title as written: no rewrite of "depression"
    postings = index.postings
    if preferred is None and any(w not in postings for w in toks):  # a misspelt common term
        fixed = [_corrected(index, w) for w in toks]  # ("hypertenstion") keeps its canonical code
        if fixed != toks:
            preferred = table.preferred.get(frozenset(table.rewrite(fixed)))
        # A curated phrase, once a word no curated phrase holds is spelt right ("chiken pox": varicella).
        respelt = [f if len(t) >= RESPELT_MIN and t not in table.words else t for t, f in zip(toks, fixed, strict=True)]
        if respelt != toks and preferred is None:
            rewritten = table.rewrite(respelt)
            if all(f not in rewritten for t, f in zip(toks, respelt, strict=True) if f != t):  # taken by it
                words = _split_compounds(index, rewritten)
    results = rank(index, words, query, preferred or (), weak, left_out)
    if preferred is None and _FAMILY_HISTORY.issubset(words) and (not results or results[0]["score"] < FAMILY_NAMED):
        results = _family_history_of_chapter(index, words, query, results, of_relative)
    if results and not (_LOWER_LIMB.isdisjoint(words) and _UPPER_LIMB.isdisjoint(words)):
        results = _the_limb_said(index, words, results)
    if results and len(SIDES.intersection(words)) == 1:
        results = _the_side_said(index, words, results)
    if results and "without" in words[1:-1]:
        results = _without_what_is_said(index, words, query, results)
    if results and results[0]["code"][0] in _EXTERNAL_CHAPTER and not SITES.isdisjoint(words):
        found = _condition_first(index, words, query, results, CONDITION_AT_A_SITE)
        # Matched on all the words, the cause is the right one (W54.0XXA): it is coded next.
        if found is results:
            return results
        found = found[:max(1, query.limit - 1)]
        return found + [{**results[0], "score": min(results[0]["score"], found[-1]["score"])}]
    if not results and "," in query.text:
        results = _best_part(index, query)
    if results or len(words) > RELAXED_MAX_WORDS:
        return results
    results = _relaxed(index, words, query)
    if results and results[0]["code"][0] in _EXTERNAL_CHAPTER:
        results = _condition_first(index, words, query, results)
    return results


def _best_part(index: SearchIndex, query: Query) -> list[dict]:
    """A query of several parts that found nothing whole ("pulled his arm and now he won't use it,
    nursemaid's elbow"): the best answer to one of its parts, scaled as a relaxed answer."""
    parts = [part.strip() for part in query.text.split(",") if part.strip()]
    if len(parts) < 2:
        return []
    found = max((search_index(index, replace(query, text=part)) for part in parts),
                key=lambda results: results[0]["score"] if results else 0.0)
    return [{**r, "score": round(r["score"] * RELAXED, 4)} for r in found]


_BMI = re.compile(r"\b(?:bmi|body mass index)\b")
_BMI_VALUE = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d+)?)(?:\s*(th|st|nd|rd|%ile|percentile))?")
_BMI_RANGE = re.compile(r"(\d+(?:\.\d)?)(?:-(\d+(?:\.\d)?)| or (less|greater)), adult")
_PERCENTILE_FROM = re.compile(r"^(?:less than )?(\d+)th percentile")
_PEDIATRIC = frozenset({"pediatric", "child", "kid", "percentile", "peds", "teen", "adolescent"})
_BMI_WORDS = _PEDIATRIC | {"bmi", "body", "mass", "index", "adult", "th", "ile", "st", "nd", "rd"}


def _bmi_code(index: SearchIndex, query: Query) -> int | None:
    """A body mass index said with its value: the Z68 code whose range holds it ("bmi 43.5 adult":
    Z68.41, 40.0-44.9; "pediatric BMI 97th percentile": Z68.54), read off the release's own titles."""
    if not _BMI.search(query.text) or not (value := _BMI_VALUE.search(_BMI.split(query.text, 1)[1] or query.text)):
        return None
    number = float(value[1])
    pediatric = bool(value[2]) or not _PEDIATRIC.isdisjoint(query.text.split())
    best: tuple[float, int] | None = None
    for position in index.code_prefix("Z68", 60):
        record = index.codes[position]
        title = record.description.split("] ", 1)[-1]
        if not record.billable or title.startswith("pediatric") != pediatric:
            continue
        if pediatric:  # the code whose lower percentile is the highest not above the value
            start = _PERCENTILE_FROM.match(title.removeprefix("pediatric, "))
            low = 0.0 if title.startswith("pediatric, less than") else float(start[1]) if start else None
            if low is not None and "%" not in title.split("percentile", 1)[0] and low <= number and (
                    best is None or low > best[0]):
                best = (low, position)
        elif found := _BMI_RANGE.search(title):
            low = float("-inf") if found[3] == "less" else float(found[1])
            high = float("inf") if found[3] == "greater" else float(found[2] or found[1])
            if low <= number <= high + 0.09:
                return position
    return best[1] if best else None


def _first(index: SearchIndex, position: int, results: list[dict], query: Query) -> list[dict]:
    """The code at `position` first, scored as a canonical code, then the rest of a ranking."""
    first = _present(index, position, 1.0, set())
    return [first] + [r for r in results if r["code"] != first["code"]][:query.limit - 1]


def _rank_part(index: SearchIndex, words: list[str], query: Query) -> list[dict]:
    """A ranking of some of a query's words, with their own canonical codes (a relaxed query, the
    condition of a family history or of a sentence saying how it happened)."""
    return rank(index, words, query, _preferred(synonyms(), words) or ())


# Who a sentence is about. A parent, grandparent or sibling said to have or have had something is a
# family history ("my mother has diabetes": Z83.3); one said to be in some state or to have just done
# something is the patient, told of by whoever brought them ("mom fell and can't get up", "grandpa is
# confused"), and so is a child whatever is said ("my son has chicken pox"): the relative's name is
# left out and the rest is searched.
_RELATIVE = re.compile(
    r"^(?:(?:my |our )(?P<child>(?:son|daughter|kid|child|toddler|boy|girl|grandson|granddaughter)(?:'?s)? )"
    r"|(?:my |our )?(?:grand(?:ma|pa|mother|father|mom|dad)|granny|nana|mom|mum|mother|dad|father|sister|brother|aunt|"
    r"uncle|parents?)(?:'?s)? (?:(?P<present>(?:is|was|keeps?|kept|fell|falls|falling|seems|can'?t|cannot|"
    r"won'?t|gets?|got|getting|feels?|felt|fainted|collapsed|passed out|has been|had been|just|suddenly)\b)"
    r"|(?P<family>has|had|with|died|passed away)\b))")


_AGE = re.compile(r"\b\d+[ -]?(?:years?|yrs?|months?|mos?)[ -]old\b|\b\d+ ?(?:yo|y/o)\b")
_WEEKS = re.compile(r"\b(\d{1,2}) ?(?:weeks?|wks?)\b")
_PREGNANT = re.compile(r"\b(?:pregnant|pregnancy|preg|fetal|fetus|gestation|gestational|iup)\b")
_ORDINAL = re.compile(r"\b(1st|2nd|3rd|4th)\b")
_ORDINAL_WORDS = {"1st": "first", "2nd": "second", "3rd": "third", "4th": "fourth"}


def _said_plainly(text: str) -> str:
    """What a query says in the classification's terms: an age is about the patient ("my 3 year old
    has pink eye": the digits had found coma-scale codes), unless of a mother or a newborn; weeks of a
    pregnancy are its trimester ("decreased fetal movement 32 wks": third trimester, O36.8130); an
    ordinal is a word ("3rd": third; a roman grade is a number on both sides, terms.tokens)."""
    if not any(c.isdigit() for c in text):
        return text
    if "newborn" not in text and "pregnan" not in text:  # an age that says which code (O09.52-)
        text = _AGE.sub(" ", text)
    if (_PREGNANT.search(text) and (weeks := _WEEKS.search(text)) and 4 <= int(weeks[1]) <= 42
            and _PREGNANT.sub(" ", _WEEKS.sub(" ", text)).strip(" ,.-")):  # a condition besides (Z3A alone)
        week = int(weeks[1])
        text += " first trimester" if week < 14 else " second trimester" if week < 28 else " third trimester"
    text = _ORDINAL.sub(lambda m: _ORDINAL_WORDS[m[1]], text)  # "3rd trimester": the classification's "third"
    return " ".join(text.split())


def _about_a_relative(text: str) -> tuple[str, bool]:
    """The text to search, and whether it came from what a relative has or had (_RELATIVE)."""
    found = _RELATIVE.match(text)
    if found is None:
        return text, False
    if found["child"]:
        return text[found.end("child"):] or text, False
    if found["present"]:
        return text[found.start("present"):], False
    return "family history of " + text[found.end("family"):], True


_FAMILY_HISTORY = frozenset({"family", "history"})
_PRESENT_STATE_CHAPTERS = frozenset({18, 19, 20})  # symptoms, injuries, their causes
FAMILY_NAMED = 0.6  # below this no family-history title names the condition ("family history of dementia")
# The family-history code for a condition of each chapter that no Z80-Z84 title names (Z84.89 is left
# to a condition of no chapter here: a symptom, an injury).
FAMILY_OF_CHAPTER = {1: "Z831", 2: "Z809", 3: "Z832", 4: "Z8349", 5: "Z818", 6: "Z820", 7: "Z83518", 8: "Z8352",
                     9: "Z8249", 10: "Z836", 11: "Z8379", 12: "Z840", 13: "Z8269", 14: "Z842", 17: "Z8279"}


def _family_history_of_chapter(index: SearchIndex, words: list[str], query: Query,
                               results: list[dict], of_relative: bool = False) -> list[dict]:
    """"Family history of dementia": no title names dementia, so the answers were family histories of
    anything. The condition's own best code says its chapter, and the chapter's family-history code
    ("of other mental and behavioral disorders", Z81.8) comes first. What a relative is said to have
    that is a symptom or an injury ("mom has memory loss") is the relative's own, told by whoever
    brought them: the answer is the symptom."""
    condition = [w for w in words if w not in _FAMILY_HISTORY and w not in _FILLER]
    if not condition:
        return results
    found = _rank_part(index, condition, replace(query, chapter=None, billable=None))
    if of_relative and found and found[0]["chapter"] in _PRESENT_STATE_CHAPTERS and found[0]["score"] >= FAMILY_NAMED:
        return [r for r in _rank_part(index, condition, query) if r["score"] >= FAMILY_NAMED * RELAXED]
    family = FAMILY_OF_CHAPTER.get(found[0]["chapter"]) if found and found[0]["score"] >= FAMILY_NAMED else None
    at = index.position_of(family) if family else None
    if at is None or not _keep(index.codes[at], query):
        return results
    first = _present(index, at, WEAK_PREFERRED, set(words))
    return [first] + [r for r in results if r["code"] != first["code"]][:query.limit - 1]


_DEFAULT_DOMINANCE = {"right": ("right dominant side",), "left": ("left nondominant side", "left non-dominant side")}


def _the_side_said(index: SearchIndex, words: list[str], results: list[dict]) -> list[dict]:
    """The code of the side a query names, where the best match left it unspecified or said nothing
    of which side is dominant: "acute left femoral DVT" is I82.412, not I82.419 ("... of unspecified
    femoral vein", which matched the header's "deep"); a side of hemiplegia or monoplegia not said to
    be dominant or not is taken as the right dominant, the left nondominant (guideline I.C.6.a:
    "CVA sequela L hemiparesis" is I69.354)."""
    side = next(iter(SIDES.intersection(words)))
    top = results[0]
    description = top["description"]
    if "dominant side" in description:
        if "dominant" in words or "nondominant" in words or side not in _DEFAULT_DOMINANCE:
            return results
        condition = description.rsplit(" affecting ", 1)[0]
        wanted = {f"{condition} affecting {w}" for w in _DEFAULT_DOMINANCE[side]}
    elif "unspecified " in description and f"{side} " not in description:
        parts = description.split("unspecified ")
        wanted = {"unspecified ".join(parts[:i]) + f"{side} " + "unspecified ".join(parts[i:])
                  for i in range(1, len(parts))}
    else:
        return results
    return _sibling_first(index, results, wanted)


_LOWER_LIMB = frozenset({"leg", "foot", "feet", "ankle", "knee", "thigh", "calf", "shin", "toe", "heel", "hip"})
_UPPER_LIMB = frozenset({"arm", "hand", "wrist", "elbow", "finger", "thumb", "forearm", "shoulder"})


def _the_limb_said(index: SearchIndex, words: list[str], results: list[dict]) -> list[dict]:
    """A lay site is of the upper or the lower limb: "cellulitis left leg" is L03.116 (of left lower
    limb), not L03.114 (upper limb), which matched as well through "limb"."""
    description = results[0]["description"]
    said = frozenset(words)
    for site, limb, other in ((_LOWER_LIMB, "lower", "upper"), (_UPPER_LIMB, "upper", "lower")):
        if not site.isdisjoint(said) and other not in said and (
                f"{other} limb" in description or f"{other} extremit" in description):
            wanted = {description.replace(f"{other} limb", f"{limb} limb")
                      .replace(f"{other} extremit", f"{limb} extremit")}
            return _sibling_first(index, results, wanted)
    return results


def _sibling_first(index: SearchIndex, results: list[dict], wanted: set[str]) -> list[dict]:
    """The billable sibling of the best match (a code of the same parent) titled as `wanted` first, in
    its place and with its score."""
    top = results[0]
    code = top["code"].replace(".", "")
    base = index.position_of(code)
    if base is None or top["description"] in wanted:
        return results
    stem_ = index.codes[base].code
    for position in index.code_prefix(stem_[:-1], 20):
        record = index.codes[position]
        if record.description in wanted and record.billable:
            found = record.code if len(code) == len(stem_) else record.code.ljust(6, "X") + code[-1]
            first = {**top, "code": dotted(found), "description": record.description}
            return ([first] + [r for r in results if r["code"] != first["code"]])[:len(results)]
    return results


def _without_what_is_said(index: SearchIndex, words: list[str], query: Query, results: list[dict]) -> list[dict]:
    """"COPD without exacerbation": the best match was still the code with it (J44.1, matched on more of
    the words); the answer is the condition's own ranking less the codes with what the query is
    without (J44.9)."""
    at = words.index("without")
    said = frozenset(words[at + 1:])

    def has_said(result: dict) -> bool:
        position = index.position_of(result["code"].replace(".", ""))
        return position is not None and any(phrase <= said for phrase in index.with_.get(position, ()))

    if not has_said(results[0]):
        return results
    return [r for r in _rank_part(index, words[:at], query) if not has_said(r)] or results


_EXTERNAL_CHAPTER = "VWXY"
CONDITION_FIRST = 0.8  # how well the condition alone must be matched to come before the cause
CONDITION_AT_A_SITE = 0.6  # how well a condition at a site, said beside its cause, must be matched to come first

_NAMES_NOTHING = NARROWING | _ABOUT_THE_PATIENT | NEUTRAL


def _condition_first(index: SearchIndex, words: list[str], query: Query, results: list[dict],
                     needed: float = CONDITION_FIRST) -> list[dict]:
    """A sentence saying what is wrong and how it happened ("broke my wrist falling off my bike") whose
    best match without some of its words is the how (an external cause, V00-Y99): the answer to what
    is wrong, from the words that are mostly not of external causes (scaled as a relaxed answer). The
    cause found so is not kept: matched on part of the words, it was rarely the right one (a wrist
    broken falling off a bike had been "struck by a falling object ... on a watercraft")."""
    condition = [w for w in words if w not in index.mostly_external]
    if "bitten" in words and not SITES.isdisjoint(words):
        # An animal's bite of a body part said ("dog bit my hand") is an injury of that part, the
        # open bite (S61.451A), the animal its cause (W54.0), coded after it; a tick's or an
        # insect's bite is the superficial "insect bite (nonvenomous)" there (S70.36-).
        bite = ["insect", "bite"] if "insect" in words or "arthropod" in words else ["open", "bite"]
        condition = bite + [w for w in words if w in SITES or w in SIDES]
    # A condition named, not only where (the hand alone names nothing wrong).
    elif len(condition) == len(words) or all(w in _NAMES_NOTHING for w in condition):
        return results
    found = _rank_part(index, condition, query)
    if not found or found[0]["code"][0] in _EXTERNAL_CHAPTER or found[0]["score"] < needed:
        return results
    return [{**r, "score": round(r["score"] * RELAXED, 4)} for r in found]


RELAXED_RANKS = 12  # rankings a query that found nothing may try without some of its words
RELAXED_MAX_WORDS = 6  # a sentence someone says; a longer query that found nothing is left at that
RELAXED = 0.8  # what an answer to part of the query keeps of its score


def _relaxed(index: SearchIndex, words: list[str], query: Query) -> list[dict]:
    """For a query nothing matched well enough ("i sprained my ankle playing soccer"): the best
    answer to the query without one of its words, then two, ... (best: the first score times the
    share of the query's weight kept, halved for an external cause), scores scaled by RELAXED. Only
    ever run for an empty answer."""
    weight = {w: _idf(index, index.variants(w, last=False)) for w in words}
    total = sum(weight.values()) or 1.0
    tries = 0
    while len(words) > 1 and tries < RELAXED_RANKS:
        best: tuple[float, list[str], list[dict]] = (0.0, words, [])
        for i in range(len(words)):
            fewer = words[:i] + words[i + 1:]
            found = _rank_part(index, fewer, query)
            tries += 1
            # An answer to more of the query (by its words' weight) beats a closer answer to less,
            # and a condition beats how it happened (an external cause, V-Y, is never the diagnosis).
            kept = found[0]["score"] * sum(weight[w] for w in fewer) / total if found else 0.0
            if found and found[0]["code"][0] in "VWXY":
                kept *= 0.5
            if kept > best[0]:
                best = (kept, fewer, found)
            if tries >= RELAXED_RANKS:
                break
        if best[2]:
            return [{**r, "score": round(r["score"] * RELAXED, 4)} for r in best[2]]
        # Nothing yet: leave out the rarest word (the one an answer misses costs the most).
        rarest = max(words, key=weight.__getitem__)
        words = [w for w in words if w != rarest]
    return []


def _before_rule_out(toks: list[str]) -> list[str]:
    """What a query says before "rule out" ("cp r/o mi" is chest pain): a diagnosis still being ruled
    out is not coded, its signs are (outpatient guideline IV.H). "r/o mi" alone is left as it is."""
    for i in range(1, len(toks) - 1):
        if toks[i] == "rule" and toks[i + 1] == "out":
            return toks[:i]
    return toks


_NEGATIVE = frozenset({"neg", "negative"})


def _no_is_without(toks: list[str]) -> list[str]:
    """After a condition, "no" is the classification's "without" ("gallstones no obstruction": K80.20,
    calculus of gallbladder without obstruction); first, it is the lay way to say something is
    missing ("no appetite", left to the curated table)."""
    if "no" not in toks[1:-1]:
        return toks
    return toks[:1] + ["without" if w == "no" else w for w in toks[1:-1]] + toks[-1:]


def _negatives_dropped(table: Synonyms, toks: list[str]) -> list[str]:
    """A test the curated table says came back negative ("strep neg") is left out before any other
    phrase can take its first word ("pharyngitis strep neg" is J02.9, not strep pharyngitis)."""
    if _NEGATIVE.isdisjoint(toks):
        return toks
    out: list[str] = []
    for word in toks:
        if word in _NEGATIVE and out and table.rewrites.get((out[-1], word)) == ():
            out.pop()
        else:
            out.append(word)
    return out


def _preferred(table: Synonyms, words: Sequence[str]) -> tuple[str, ...] | None:
    """The curated canonical codes of these words, or of them without filler ("fever in child",
    "CHF unspecified")."""
    bag = frozenset(words)
    found = table.preferred.get(bag)
    if found is not None or not _FILLER.intersection(bag):
        return found
    # Without every filler word, else without only those about the patient or the stress, so that a
    # canonical phrase holding "unspecified" still meets "kid" + it ("kid swallowed pills").
    return table.preferred.get(bag - _FILLER) or table.preferred.get(bag - _ABOUT_THE_PATIENT)


def _weak_preferred(table: Synonyms, words: Sequence[str]) -> tuple[tuple[str, ...], frozenset[str]]:
    """Canonical codes that stand in for a query without some of its words, and those words: its lay
    sites ("rash on my arm": the rash's code, unless some code has both), else all but a framing word
    that has a code of its own ("hpv vaccine": whatever the vaccine, the encounter is Z23)."""
    bag = frozenset(words)
    # Without the side first: "edema of left leg" is leg edema (R60.0), not edema anywhere (R60.9).
    for core in (bag - SIDES, bag - _FILLER - SITES - SIDES - WHEN):
        if core and core != bag and core in table.preferred:
            return table.preferred[core], bag - core
    framed = next((w for w in words if w in FRAMING and frozenset([w]) in table.preferred), None)
    if framed is not None:
        return table.preferred[frozenset([framed])], bag - {framed}
    return (), frozenset()


def _names_an_entry(index: SearchIndex, toks: list[str]) -> bool:
    """Whether some title or inclusion term is exactly these words (beside "unspecified", "NOS")."""
    if len(toks) < 2 or any(t not in index.postings for t in toks):
        return False
    wanted = frozenset(toks)
    if hash(wanted - NEUTRAL) in index.short_names:  # its essential words: not "(nonvenomous)"
        return True
    sets = sorted((index.postings[t] for t in wanted), key=len)
    entry_tokens = index.entry_tokens
    return any(frozenset(entry_tokens[e]) - NEUTRAL == wanted for e in sets[0].intersection(*sets[1:]))


_HYPHENATED = re.compile(r"\b([a-z]+)-([a-z]+)\b")


def _joined(index: SearchIndex, text: str) -> str:
    """A hyphenated word the index holds written together: "pre-diabetes" is "prediabetes" (R73.03),
    not "pre" and "diabetes"."""
    return _HYPHENATED.sub(lambda m: m[1] + m[2] if stem(m[1] + m[2]) in index.postings else m[0], text)


_ALPHANUMERIC = re.compile(r"^([a-z]{2,})(\d{1,2}[a-z]?)$")


def _split_alphanumeric(index: SearchIndex, table: Synonyms, toks: list[str]) -> list[str]:
    """A word and a number written together that neither the index nor the curated table knows:
    apart ("ckd3b" -> "ckd 3b", "covid19" -> "covid 19"); "dm2", "b12" are known and stay."""
    out: list[str] = []
    for word in toks:
        match = _ALPHANUMERIC.match(word)
        if match and word not in index.postings and (word,) not in table.rewrites:
            out.extend(match.groups())
        else:
            out.append(word)
    return out


def _split_compounds(index: SearchIndex, toks: list[str]) -> list[str]:
    """A word the index does not hold that is two words it does, written together ("preeclampsia"
    for "pre-eclampsia"): both words. Only where no typo correction is near, so a misspelling is not
    taken apart."""
    out: list[str] = []
    for word in toks:
        # (A lay site the index lacks is not two words: "eyebrow" is no "eye" + "brow".)
        unknown = len(word) >= 7 and word not in index.postings and not word.isdigit() and word not in SITES
        if unknown and not index.variants(word, last=False, trigrams=False):
            split = next(((word[:i], word[i:]) for i in range(3, len(word) - 2)
                          if word[:i] in index.postings and word[i:] in index.postings), None)
            if split is not None:
                out.extend(split)
                continue
        out.append(word)
    return out


_ASKING = frozenset({"need", "want"})
RESPELT_MIN = 5  # letters of a misspelt word a curated phrase may take once spelt right


def _lay_typos(index: SearchIndex, table: Synonyms, toks: list[str]) -> list[str]:
    """A misspelt lay word the classification does not hold ("shingels": shingles, a curated word for
    zoster), corrected to it when no index word is near: typo tolerance for the curated words too."""
    if all(w in index.postings for w in toks):
        return toks
    known = table.lay_neighbours
    fixed = []
    for word in toks:
        if (word in index.postings or word in known.get(word, ()) or len(word) < 5 or word.isdigit()
                or index.variants(word, last=False, trigrams=False)):
            fixed.append(word)
        else:
            fixed.append(table.lay_word(word) or word)
    return fixed


def _corrected(index: SearchIndex, word: str) -> str:
    """The one index word a misspelt word stands for (the closest, or the commonest of the closest:
    _variants), else the word."""
    if word in index.postings or word.isdigit():
        return word
    found = index.variants(word, last=False)
    best = max(found.values(), default=0.0)
    top = [w for w, weight in found.items() if weight == best]
    return top[0] if len(top) == 1 else word


Connect = Connection | Callable[[], Connection]  # a connection, or how to get one if needed


class IndexHolder:
    """The process's index of the active release: built on first use (or by `warm`), rebuilt when
    another release becomes active, checked at most every RELEASE_CHECK_SECONDS."""

    def __init__(self) -> None:
        self.index: SearchIndex | None = None
        self.checked = 0.0
        self.lock = threading.Lock()

    def get(self, conn: Connect) -> SearchIndex:
        """The index; `conn` is only used (or called) when the release must be checked."""
        if self.index is not None and time.monotonic() - self.checked < RELEASE_CHECK_SECONDS:
            return self.index
        with self.lock:
            if self.index is not None and time.monotonic() - self.checked < RELEASE_CHECK_SECONDS:
                return self.index
            connection = conn() if callable(conn) else conn
            release = active_release_id(connection)
            if self.index is None or self.index.release_id != release:
                self.index = SearchIndex.build(*fetch_search_rows(connection))
                # The index is ~300,000 long-lived containers: keep the cycle collector from
                # walking them again and again (a full pass costs tens of ms, paid by a search).
                gc.collect()
                gc.freeze()
            self.checked = time.monotonic()
            return self.index


class Memo:
    """A small in-process LRU in front of Redis for repeated queries (keys carry the release)."""

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        # Whether this process keeps the answers other processes announce (web processes: see
        # take_announced_answers); a worker coding dx_text has no use for the API's traffic.
        self.takes_announced = False
        self.items: OrderedDict[str, list[dict]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str) -> list[dict] | None:
        with self.lock:
            found = self.items.get(key)
            if found is not None:
                self.items.move_to_end(key)
            return found

    def put(self, key: str, value: list[dict]) -> None:
        with self.lock:
            self.items[key] = value
            if len(self.items) > self.size:
                self.items.popitem(last=False)


holder = IndexHolder()
memo = Memo()
_SEARCH_KEYS = kind_prefix("search")


def take_announced_answers() -> None:
    """From now on this process keeps in its memo the search answers any process announces writing
    (cache.announce), so a query another process has just answered costs it no Redis round trip."""
    memo.takes_announced = True


def _take_announced(key: str, value) -> None:
    """A search answer another process (or this one) wrote to Redis: kept in the memo."""
    if memo.takes_announced and key.startswith(_SEARCH_KEYS) and isinstance(value, list):
        memo.put(key, value)


def search(conn: Connect, cache: Cache | None, query: Query) -> tuple[list[dict], bool]:
    """Results for a validated query and whether they came from a cache (process, then Redis)."""
    index = holder.get(conn)
    key = cache_key("search", index.release_id or 0, query.text, query.limit, query.chapter, query.billable)
    results = memo.get(key)
    if results is not None:
        return results, True
    # Redis only for a key another process announced it wrote: asking it for every first-time
    # query cost more than the ranking it could save (cache.announce). Announced values land in the
    # memo as they are heard, so Redis is asked only for those the memo has since let go.
    listener = announced(cache.url) if cache is not None else None
    if listener is not None and memo.takes_announced and listener.on_value is None:
        listener.on_value = _take_announced
    results = cache.get(key) if cache is not None and listener is not None and key in listener else None
    if results is not None:
        memo.put(key, results)
        return results, True
    results = search_index(index, query)
    memo.put(key, results)
    if cache is not None:  # for the other processes; this one answers from the memo meanwhile
        write_behind(cache).set(key, results, SEARCH_TTL, tags_for("search", index.release_id or 0, query.chapter))
    return results, False
