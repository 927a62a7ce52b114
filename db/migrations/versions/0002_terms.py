"""Terminology engine: planner setting for short indexed lookups, and the search-log query index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Lookups join up to 22 code partitions; their cost estimate passes the JIT threshold and
    # compiling then costs ~300 ms for a query that runs in 2 ms. This workload never gains from JIT.
    op.execute("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET jit = off', current_database()); END $$")
    op.execute("CREATE INDEX IF NOT EXISTS search_log_query ON search_log (query, created_at)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS search_log_query")
    op.execute("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I RESET jit', current_database()); END $$")
