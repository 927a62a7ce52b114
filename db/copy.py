"""The one COPY helper: rows into a table over the connection's own transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy.engine import Connection


def copy_rows(conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence],
              types: Sequence[str] | None = None) -> int:
    """COPY rows (tuples in `columns` order) into `table`; returns the row count.

    With `types` (PostgreSQL type names, one per column) the copy is binary: bytes go as they are,
    where the text format sends bytea as hex, twice the size, for the server to decode again.
    Runs inside the SQLAlchemy connection's transaction, so a failure rolls the copy back with it.
    """
    cols = ", ".join(columns)
    count = 0
    cursor = conn.connection.driver_connection.cursor()
    binary = " (FORMAT BINARY)" if types else ""
    with cursor.copy(f"COPY {table} ({cols}) FROM STDIN{binary}") as copy:
        if types:
            copy.set_types(list(types))
        for row in rows:
            copy.write_row(row)
            count += 1
    return count
