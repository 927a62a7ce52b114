"""Monthly partitions ahead of the calendar, and views that refresh concurrently."""

from __future__ import annotations

from datetime import date

from sqlalchemy import text

from db import partitions


def _months_from_now(n: int) -> str:
    today = date.today()
    year, month = divmod(today.month - 1 + n, 12)
    return f"y{today.year + year}m{month + 1:02d}"


def test_current_month_and_six_ahead_exist(conn):
    assert "search_log" in partitions.MONTHLY_TABLES
    for table in partitions.MONTHLY_TABLES:
        names = partitions.month_partitions(conn, table)
        for n in range(7):
            assert f"{table}_{_months_from_now(n)}" in names


def _furthest_ahead(conn, table: str) -> int:
    return max(n for n in range(36) if f"{table}_{_months_from_now(n)}" in partitions.month_partitions(conn, table))


def test_ensuring_partitions_is_idempotent_and_extends_ahead(conn):
    tables = partitions.MONTHLY_TABLES
    furthest = max(_furthest_ahead(conn, t) for t in tables)
    partitions.ensure_month_partitions(conn, furthest)  # every table equally far ahead
    assert partitions.ensure_month_partitions(conn, furthest) == dict.fromkeys(tables, 0)
    assert partitions.ensure_month_partitions(conn, furthest + 2) == dict.fromkeys(tables, 2)
    for table in tables:
        assert f"{table}_{_months_from_now(furthest + 2)}" in partitions.month_partitions(conn, table)


def test_a_search_log_row_lands_in_its_month(conn):
    conn.execute(text("INSERT INTO search_log (query, results, latency_ms, cache_hit) VALUES ('x', 1, 1, false)"))
    part = conn.execute(text("SELECT tableoid::regclass::text FROM search_log WHERE query = 'x'")).scalar()
    assert part == f"search_log_{_months_from_now(0)}"


def test_views_refresh_concurrently(conn):
    assert partitions.refresh_views(conn) == ["mv_chapter_stats", "mv_popular_searches"]
    stats = conn.execute(text("SELECT chapter, codes, billable FROM mv_chapter_stats ORDER BY chapter")).all()
    assert len(stats) == 22
    assert sum(s.billable for s in stats) == 74_719
