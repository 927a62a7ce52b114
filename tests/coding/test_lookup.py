"""resolve_codes / lookup against the real PostgreSQL and Redis."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import event

from cache.client import Cache, shared_cache
from cache.tags import code_key
from coding.lookup import lookup_inputs, resolve_codes


@pytest.fixture
def cache(endpoints) -> Cache:
    return shared_cache(endpoints.cache_url)


def _matches(ranges: list[list[str]], code: str) -> bool:
    return any(code >= lo and code[:len(hi)] <= hi for lo, hi in ranges)


def test_a_billable_code_with_its_hierarchy_and_inherited_excludes1(conn, cache) -> None:
    info = resolve_codes(conn, cache, ["E119"])["E119"]
    assert info.valid and info.billable and info.active
    assert (info.dotted, info.description) == ("E11.9", "Type 2 diabetes mellitus without complications")
    assert (info.chapter, info.block) == (4, "E08-E13")
    assert [p["code"] for p in info.parents] == ["E11"]
    # E11's own Excludes1 (type 1 diabetes, E10) applies to E11.9 as well
    assert _matches(info.excludes1_ranges, "E109") and not _matches(info.excludes1_ranges, "I10")
    assert any(n["from"] == "E11" for n in info.excludes1)
    assert info.releases and info.effective_on(date.fromisoformat(info.releases[0]["effective_from"]))
    assert not info.effective_on(date(2001, 1, 1))


def test_block_excludes1_reach_the_codes_of_the_block(conn, cache) -> None:
    info = resolve_codes(conn, cache, ["A150"])["A150"]
    assert _matches(info.excludes1_ranges, "P370")  # block A15-A19: congenital tuberculosis


def test_manifestation_codes_are_flagged(conn, cache) -> None:
    infos = resolve_codes(conn, cache, ["G01", "E119"])
    assert infos["G01"].manifestation and infos["G01"].code_first
    assert not infos["E119"].manifestation


def test_a_header_needing_a_seventh_character_lists_the_options(conn, cache) -> None:
    info = resolve_codes(conn, cache, ["S52521"])["S52521"]
    assert info.valid and not info.billable and info.requires_seventh
    assert {"A", "D", "S"} <= set(info.seven_char)
    full = resolve_codes(conn, cache, ["S52521A"])["S52521A"]
    assert full.billable and [p["code"] for p in full.parents][-1] == "S52.521"


def test_unknown_who_only_and_malformed_codes_say_why(conn, cache) -> None:
    infos = resolve_codes(conn, cache, ["E149", "E14", "U999", "12AB"])
    assert infos["E149"].who_only and not infos["E149"].valid and "WHO" in infos["E149"].message
    assert infos["E14"].who_only
    assert not infos["U999"].valid and not infos["U999"].who_only
    assert "not in any loaded" in infos["U999"].message
    assert "not an ICD-10-CM code" in infos["12AB"].message


def test_found_codes_are_cached_and_answered_from_redis(conn, cache) -> None:
    cache.redis.delete(code_key("I10"), code_key("E149"))
    resolve_codes(conn, cache, ["I10", "E149"])
    assert cache.redis.ttl(code_key("I10")) > 3600
    assert 0 < cache.redis.ttl(code_key("E149")) <= 300  # unknown codes only briefly
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731 - a one-line event hook
    event.listen(conn, "before_cursor_execute", listener)
    try:
        assert resolve_codes(conn, cache, ["I10"])["I10"].description == "Essential (primary) hypertension"
    finally:
        event.remove(conn, "before_cursor_execute", listener)
    assert statements == []


def test_a_large_batch_is_resolved_with_a_constant_number_of_queries(conn) -> None:
    codes = [row[0] for row in conn.exec_driver_sql("SELECT code FROM icd_codes ORDER BY code LIMIT 3000")]
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731 - a one-line event hook
    event.listen(conn, "before_cursor_execute", listener)
    try:
        infos = resolve_codes(conn, None, [*codes, "E149"])
    finally:
        event.remove(conn, "before_cursor_execute", listener)
    assert all(infos[c].valid for c in codes)
    assert len(statements) <= 3


def test_redis_down_gives_the_same_answers(conn, cache) -> None:
    down = Cache("redis://127.0.0.1:1/0", fail_max=1)
    assert resolve_codes(conn, down, ["E119", "E149"]) == resolve_codes(conn, cache, ["E119", "E149"])


def test_lookup_inputs_are_lenient_and_keep_order_and_duplicates(conn, cache) -> None:
    results = lookup_inputs(conn, cache, [" e11.9 ", "E119", "i10", "E14.9", "E11.9"])
    assert [r["input"] for r in results] == [" e11.9 ", "E119", "i10", "E14.9", "E11.9"]
    assert [r["code"] for r in results] == ["E11.9", "E11.9", "I10", "E14.9", "E11.9"]
    assert [r["valid"] for r in results] == [True, True, True, False, True]
    assert results[3]["who_only"]
