"""The one COPY helper: rows into a table over the connection's own transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy.engine import Connection


def copy_rows(conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    """COPY rows (tuples in `columns` order) into `table`; returns the row count.

    Runs inside the SQLAlchemy connection's transaction, so a failure rolls the copy back with it.
    """
    cols = ", ".join(columns)
    count = 0
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count
