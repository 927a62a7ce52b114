"""Time partitions and materialized views: what beat keeps ahead of the calendar."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from sqlalchemy import text
from sqlalchemy.engine import Connection

# Month-partitioned tables; later migrations append theirs here (see jobs tables).
MONTHLY_TABLES = ["search_log", "job_results"]
MATERIALIZED_VIEWS = ["mv_chapter_stats", "mv_popular_searches"]


def ensure_month_partitions(conn: Connection, months_ahead: int = 6) -> dict[str, int]:
    """Create the current month's and `months_ahead` future partitions of each monthly table."""
    created = {}
    for table in MONTHLY_TABLES:
        if conn.execute(text("SELECT to_regclass(:t)"), {"t": table}).scalar() is None:
            continue
        created[table] = conn.execute(
            text("SELECT icdq_ensure_month_partitions(:t, :n)"), {"t": table, "n": months_ahead}
        ).scalar_one()
    return created


def month_partitions(conn: Connection, table: str) -> list[str]:
    rows = conn.execute(text("""
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname = :t AND c.relname ~ '_y[0-9]{4}m[0-9]{2}$' ORDER BY c.relname"""), {"t": table})
    return [r[0] for r in rows]


def month_of(partition: str) -> date:
    """`job_results_y2026m04` -> 2026-04-01."""
    year, month = partition.rsplit("_y", 1)[1].split("m")
    return date(int(year), int(month), 1)


def drop_months_before(conn: Connection, table: str, before: date, keep: Callable[[date], bool]) -> list[str]:
    """Drop each month partition of `table` that ends on or before `before`, unless `keep(month)`:
    old rows go in one catalog change instead of a DELETE that leaves dead rows to vacuum."""
    dropped = []
    for name in month_partitions(conn, table):
        month = month_of(name)
        end = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        if end <= before and not keep(month):
            conn.execute(text(f'DROP TABLE "{name}"'))
            dropped.append(name)
    return dropped


def refresh_views(conn: Connection) -> list[str]:
    for view in MATERIALIZED_VIEWS:
        conn.execute(text(f"REFRESH MATERIALIZED VIEW CONCURRENTLY {view}"))
    return list(MATERIALIZED_VIEWS)
