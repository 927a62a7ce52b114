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


def _old_job(conn, created: str, state: str) -> str:
    from uuid import uuid4

    from db.jobs import pack_records

    job_id = str(uuid4())
    conn.execute(text("""INSERT INTO jobs (id, owner, kind, request_hash, lease_until, state, created_at)
                         VALUES (:id, 'purge-test', 'claims', '', now(), :s, :c)"""),
                 {"id": job_id, "s": state, "c": created})
    conn.execute(text("""INSERT INTO job_results VALUES (date_trunc('month', CAST(:c AS timestamptz))::date,
                         :id, 1, 1, :r)"""), {"id": job_id, "c": created, "r": pack_records(["{}"])})
    return job_id


def test_purge_drops_months_left_empty_and_deletes_rows_elsewhere(conn):
    from db.jobs import purge_old_jobs

    for month, upto in (("2025-01-01", "2025-02-01"), ("2025-02-01", "2025-03-01")):
        name = f"job_results_y{month[:4]}m{month[5:7]}"
        conn.execute(text(f"CREATE TABLE {name} PARTITION OF job_results FOR VALUES FROM ('{month}') TO ('{upto}')"))
    january = _old_job(conn, "2025-01-10", "succeeded")
    february_open = _old_job(conn, "2025-02-10", "running")
    february_done = _old_job(conn, "2025-02-05", "failed")
    recent = _old_job(conn, date.today().isoformat(), "succeeded")

    purged = purge_old_jobs(conn, keep_days=30)

    assert purged == {"jobs": 2, "partitions_dropped": ["job_results_y2025m01"]}
    assert "job_results_y2025m01" not in partitions.month_partitions(conn, "job_results")
    left = set(conn.execute(text("SELECT id::text FROM jobs WHERE owner = 'purge-test'")).scalars())
    assert left == {february_open, recent}
    results = set(conn.execute(text("SELECT job_id::text FROM job_results WHERE job_id = ANY(CAST(:ids AS uuid[]))"),
                               {"ids": [january, february_open, february_done, recent]}).scalars())
    assert results == {february_open, recent}
