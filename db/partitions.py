"""Time partitions and materialized views: what beat keeps ahead of the calendar."""

from __future__ import annotations

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


def refresh_views(conn: Connection) -> list[str]:
    for view in MATERIALIZED_VIEWS:
        conn.execute(text(f"REFRESH MATERIALIZED VIEW CONCURRENTLY {view}"))
    return list(MATERIALIZED_VIEWS)
