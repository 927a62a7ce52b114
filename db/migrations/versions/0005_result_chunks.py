"""Results stored per chunk, compressed, and a chunk's input records as one JSON text.

A job's results were one row per line: for a 1,000,000-line file that was 1,000,000 heap rows and
index entries (~3 KB written per line with WAL) and most of the database's CPU while coding. Now
one row holds a chunk's records as zstd-compressed NDJSON (db.jobs.pack_records): ~14x less
stored, a few TOAST rows a chunk; lines are still served in input order and paged by line number.
A chunk's input records travel as one JSON array text instead of a text[] that PostgreSQL had to
build and unpack element by element.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from alembic import op
from sqlalchemy import text

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from db.jobs import pack_records

    conn = op.get_bind()
    op.execute("ALTER TABLE job_chunks ALTER COLUMN records TYPE text USING array_to_json(records)::text")
    op.execute("ALTER TABLE job_chunks ALTER COLUMN records SET STORAGE EXTERNAL")  # read once: no compression
    op.execute("ALTER TABLE job_results RENAME TO job_results_lines")
    op.execute("""
        CREATE TABLE job_results (
            job_month date NOT NULL,  -- the job's creation month: all of a job's chunks share a partition
            job_id uuid NOT NULL,
            first_line int NOT NULL,
            lines int NOT NULL,
            records bytea NOT NULL,  -- the chunk's result records: NDJSON, zstd-compressed (pack_records)
            PRIMARY KEY (job_id, first_line, job_month)
        ) PARTITION BY RANGE (job_month)""")
    op.execute("ALTER TABLE job_results ALTER COLUMN records SET STORAGE EXTERNAL")  # compressed already
    chunks = conn.execute(text("""
        SELECT r.job_month, r.job_id, c.first_line, c.lines, array_agg(r.record ORDER BY r.line) AS records
        FROM job_results_lines r JOIN job_chunks c
          ON c.job_id = r.job_id AND r.line >= c.first_line AND r.line < c.first_line + c.lines
        GROUP BY r.job_month, r.job_id, c.first_line, c.lines""")).all()
    _rename_partitions(conn, "job_results_lines")
    op.execute("CREATE TABLE job_results_default PARTITION OF job_results DEFAULT")
    op.execute("SELECT icdq_ensure_month_partitions('job_results', 6)")
    for row in chunks:
        conn.execute(text("""INSERT INTO job_results VALUES (:m, :id, :first, :lines, :records)"""),
                     {"m": row.job_month, "id": row.job_id, "first": row.first_line, "lines": row.lines,
                      "records": pack_records(row.records)})
    op.execute("DROP TABLE job_results_lines CASCADE")


def _rename_partitions(conn, parent: str) -> None:
    """Partitions keep their names when the parent is renamed: move them out of the new table's way."""
    for (name,) in conn.execute(text("""SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                                        WHERE i.inhparent = CAST(:p AS regclass)"""), {"p": parent}).all():
        conn.execute(text(f'ALTER TABLE "{name}" RENAME TO "{parent}{name.removeprefix("job_results")}"'))


def downgrade() -> None:
    from db.jobs import unpack_records

    conn = op.get_bind()
    op.execute("ALTER TABLE job_results RENAME TO job_results_chunks")
    _rename_partitions(conn, "job_results_chunks")
    op.execute("""
        CREATE TABLE job_results (
            job_month date NOT NULL, job_id uuid NOT NULL, line int NOT NULL, status text NOT NULL,
            record text NOT NULL, PRIMARY KEY (job_id, line, job_month)
        ) PARTITION BY RANGE (job_month)""")
    op.execute("CREATE TABLE job_results_default PARTITION OF job_results DEFAULT")
    op.execute("SELECT icdq_ensure_month_partitions('job_results', 6)")
    for row in conn.execute(text("SELECT job_month, job_id, first_line, records FROM job_results_chunks")).all():
        for n, record in enumerate(unpack_records(row.records)):
            conn.execute(text("INSERT INTO job_results VALUES (:m, :id, :line, CAST(:r AS json)->>'status', :r)"),
                         {"m": row.job_month, "id": row.job_id, "line": row.first_line + n, "r": record})
    op.execute("DROP TABLE job_results_chunks CASCADE")
    op.execute("ALTER TABLE job_chunks ADD COLUMN records_array text[]")
    op.execute("UPDATE job_chunks SET records_array = ARRAY(SELECT json_array_elements_text(CAST(records AS json)))")
    op.execute("ALTER TABLE job_chunks DROP COLUMN records")
    op.execute("ALTER TABLE job_chunks RENAME COLUMN records_array TO records")
    op.execute("ALTER TABLE job_chunks ALTER COLUMN records SET NOT NULL")
