"""Foundation: releases, the ICD-10-CM code table partitioned by chapter, the monthly search log,
the partition-maintenance function and the materialized views.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# (chapter number, first code) of the 22 chapters of ICD-10-CM FY2026, in code order. Each partition
# runs from its chapter's first code to the next chapter's first code, so every code has a home.
CHAPTER_STARTS = [
    (1, "A00"), (2, "C00"), (3, "D50"), (4, "E00"), (5, "F01"), (6, "G00"), (7, "H00"), (8, "H60"),
    (9, "I00"), (10, "J00"), (11, "K00"), (12, "L00"), (13, "M00"), (14, "N00"), (15, "O00"),
    (16, "P00"), (17, "Q00"), (18, "R00"), (19, "S00"), (22, "U00"), (20, "V00"), (21, "Z00"),
]

MONTH_PARTITION_FUNCTION = """
CREATE OR REPLACE FUNCTION icdq_ensure_month_partitions(parent text, months_ahead int DEFAULT 6)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    month date := date_trunc('month', now())::date;
    last_month date := (date_trunc('month', now()) + make_interval(months => months_ahead))::date;
    part text;
    created int := 0;
BEGIN
    WHILE month <= last_month LOOP
        part := format('%s_y%sm%s', parent, to_char(month, 'YYYY'), to_char(month, 'MM'));
        IF to_regclass(part) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                           part, parent, month, (month + interval '1 month')::date);
            created := created + 1;
        END IF;
        month := (month + interval '1 month')::date;
    END LOOP;
    RETURN created;
END $$;
"""


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    op.execute("""
        CREATE TABLE releases (
            id serial PRIMARY KEY,
            name text NOT NULL UNIQUE,
            fiscal_year int NOT NULL,
            effective_from date NOT NULL,
            effective_to date NOT NULL,
            loaded_at timestamptz NOT NULL DEFAULT now(),
            checksum text NOT NULL UNIQUE,
            source text NOT NULL,
            codes int NOT NULL,
            billable int NOT NULL,
            CHECK (effective_from <= effective_to)
        )""")
    op.execute("""
        CREATE TABLE chapters (
            release_id int NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
            number smallint NOT NULL,
            first_code text COLLATE "C" NOT NULL,
            last_code text COLLATE "C" NOT NULL,
            description text NOT NULL,
            notes jsonb NOT NULL DEFAULT '{}',
            PRIMARY KEY (release_id, number)
        )""")
    op.execute("""
        CREATE TABLE blocks (
            release_id int NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
            id text COLLATE "C" NOT NULL,
            first_code text COLLATE "C" NOT NULL,
            last_code text COLLATE "C" NOT NULL,
            chapter smallint NOT NULL,
            description text NOT NULL,
            notes jsonb NOT NULL DEFAULT '{}',
            PRIMARY KEY (release_id, id)
        )""")
    op.execute("""
        CREATE TABLE icd_codes (
            code text COLLATE "C" NOT NULL,
            release_id int NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
            dotted text NOT NULL,
            description text NOT NULL,
            billable boolean NOT NULL,
            active boolean NOT NULL DEFAULT false,
            chapter smallint NOT NULL,
            block text COLLATE "C" NOT NULL,
            parent text COLLATE "C",
            ancestors text[] NOT NULL DEFAULT '{}',
            depth smallint NOT NULL,
            inclusion_terms text[] NOT NULL DEFAULT '{}',
            includes text[] NOT NULL DEFAULT '{}',
            excludes1 jsonb NOT NULL DEFAULT '[]',
            excludes2 jsonb NOT NULL DEFAULT '[]',
            code_first jsonb NOT NULL DEFAULT '[]',
            use_additional jsonb NOT NULL DEFAULT '[]',
            code_also jsonb NOT NULL DEFAULT '[]',
            seven_char jsonb NOT NULL DEFAULT '{}',
            requires_seventh boolean NOT NULL DEFAULT false,
            search_doc text NOT NULL,
            search_tsv tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, search_doc)) STORED,
            PRIMARY KEY (code, release_id)
        ) PARTITION BY RANGE (code)""")
    for i, (number, first) in enumerate(CHAPTER_STARTS):
        low = "(MINVALUE)" if i == 0 else f"('{first}')"
        high = "(MAXVALUE)" if i == len(CHAPTER_STARTS) - 1 else f"('{CHAPTER_STARTS[i + 1][1]}')"
        op.execute(f"CREATE TABLE icd_codes_ch{number:02d} PARTITION OF icd_codes "
                   f"FOR VALUES FROM {low} TO {high}")
    # Declared on the parent, so each chapter partition gets its own copy of every index.
    op.execute("CREATE INDEX icd_codes_search_trgm ON icd_codes USING gin (search_doc gin_trgm_ops)")
    op.execute("CREATE INDEX icd_codes_search_tsv ON icd_codes USING gin (search_tsv)")
    op.execute("CREATE INDEX icd_codes_active_chapter ON icd_codes (active, chapter, code) WHERE active")
    op.execute("CREATE INDEX icd_codes_parent ON icd_codes (parent, release_id)")

    op.execute("""
        CREATE TABLE search_log (
            created_at timestamptz NOT NULL DEFAULT now(),
            query text NOT NULL,
            results int NOT NULL,
            latency_ms real NOT NULL,
            cache_hit boolean NOT NULL
        ) PARTITION BY RANGE (created_at)""")
    op.execute("CREATE TABLE search_log_default PARTITION OF search_log DEFAULT")
    op.execute("CREATE INDEX search_log_created ON search_log (created_at)")
    op.execute(MONTH_PARTITION_FUNCTION)
    op.execute("SELECT icdq_ensure_month_partitions('search_log', 6)")

    op.execute("""
        CREATE MATERIALIZED VIEW mv_chapter_stats AS
        SELECT c.chapter, ch.description, count(*) AS codes, count(*) FILTER (WHERE c.billable) AS billable
        FROM icd_codes c
        LEFT JOIN chapters ch ON ch.release_id = c.release_id AND ch.number = c.chapter
        WHERE c.active
        GROUP BY c.chapter, ch.description""")
    op.execute("CREATE UNIQUE INDEX mv_chapter_stats_chapter ON mv_chapter_stats (chapter)")
    op.execute("""
        CREATE MATERIALIZED VIEW mv_popular_searches AS
        SELECT query, count(*) AS searches, avg(results)::real AS avg_results,
               avg(latency_ms)::real AS avg_latency_ms, max(created_at) AS last_seen
        FROM search_log
        WHERE created_at > now() - interval '30 days'
        GROUP BY query""")
    op.execute("CREATE UNIQUE INDEX mv_popular_searches_query ON mv_popular_searches (query)")


def downgrade() -> None:
    op.execute("DROP MATERIALIZED VIEW IF EXISTS mv_popular_searches")
    op.execute("DROP MATERIALIZED VIEW IF EXISTS mv_chapter_stats")
    op.execute("DROP TABLE IF EXISTS search_log CASCADE")
    op.execute("DROP FUNCTION IF EXISTS icdq_ensure_month_partitions(text, int)")
    op.execute("DROP TABLE IF EXISTS icd_codes CASCADE")
    op.execute("DROP TABLE IF EXISTS blocks, chapters, releases CASCADE")
