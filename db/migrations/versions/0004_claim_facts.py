"""Claim facts: what the claim edits need of each code (inherited Excludes1 ranges, the manifestation
convention), computed once per release by the loader instead of once per code in every worker.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from db.loader import backfill_claim_facts

    op.execute("ALTER TABLE icd_codes ADD COLUMN IF NOT EXISTS claim_facts json")
    backfill_claim_facts(op.get_bind())  # releases loaded before this migration
    op.execute("ANALYZE icd_codes")  # the parent's statistics, which autovacuum never gathers


def downgrade() -> None:
    op.execute("ALTER TABLE icd_codes DROP COLUMN IF EXISTS claim_facts")
