"""Jobs: API keys, jobs, uploads stored in PostgreSQL, chunk leases and the monthly results table.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE api_keys (
            id serial PRIMARY KEY,
            name text NOT NULL,
            tier text NOT NULL DEFAULT 'standard',
            key_hash text NOT NULL UNIQUE,  -- sha256 hex of the key; the key itself is never stored
            created_at timestamptz NOT NULL DEFAULT now(),
            revoked_at timestamptz
        )""")
    op.execute("""
        CREATE TABLE jobs (
            id uuid PRIMARY KEY,
            owner text NOT NULL,  -- 'anonymous' or the sha256 hex of the caller's API key
            kind text NOT NULL CHECK (kind IN ('claims', 'lookup', 'analyze')),
            state text NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
            idempotency_key text,
            request_hash text NOT NULL,
            first_answer jsonb,
            header text[] NOT NULL DEFAULT '{}',
            upload_bytes bigint NOT NULL DEFAULT 0,
            total int,
            chunks_total int,
            chunks_done int NOT NULL DEFAULT 0,
            done int NOT NULL DEFAULT 0,
            counts jsonb,
            error text,
            lease_seconds int NOT NULL DEFAULT 60,
            lease_until timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            started_at timestamptz,
            finished_at timestamptz,
            UNIQUE (owner, idempotency_key)
        )""")
    op.execute("CREATE INDEX jobs_open ON jobs (lease_until) WHERE state IN ('queued', 'running')")
    op.execute("CREATE INDEX jobs_created ON jobs (created_at)")
    op.execute("""
        CREATE TABLE job_uploads (
            job_id uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
            seq int NOT NULL,
            data bytea NOT NULL,
            PRIMARY KEY (job_id, seq)
        )""")
    op.execute("""
        CREATE TABLE job_chunks (
            job_id uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
            chunk_no int NOT NULL,
            first_line int NOT NULL,
            lines int NOT NULL,
            records text[] NOT NULL,
            state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'done')),
            attempts int NOT NULL DEFAULT 0,
            lease_until timestamptz NOT NULL,
            counts jsonb,
            finished_at timestamptz,
            PRIMARY KEY (job_id, chunk_no)
        )""")
    op.execute("CREATE INDEX job_chunks_open ON job_chunks (lease_until) WHERE state <> 'done'")
    op.execute("""
        CREATE TABLE job_results (
            job_month date NOT NULL,  -- the job's creation month: all of a job's lines share a partition
            job_id uuid NOT NULL,
            line int NOT NULL,
            status text NOT NULL,
            record text NOT NULL,  -- the result record as JSON, served as-is for NDJSON
            PRIMARY KEY (job_id, line, job_month)
        ) PARTITION BY RANGE (job_month)""")
    op.execute("CREATE TABLE job_results_default PARTITION OF job_results DEFAULT")
    op.execute("SELECT icdq_ensure_month_partitions('job_results', 6)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS job_results CASCADE")
    op.execute("DROP TABLE IF EXISTS job_chunks, job_uploads, jobs, api_keys CASCADE")
