"""Uploads stored uncompressed: a claim file is read once, by the ingest, and then deleted, so
TOAST's pglz compression of every 1 MB piece was pure cost on the upload's critical path.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE job_uploads ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.execute("ALTER TABLE job_uploads ALTER COLUMN data SET STORAGE EXTENDED")
