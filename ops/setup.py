"""Bring a database to a usable state: schema migrated, the bundled release loaded when none is."""

from __future__ import annotations

from sqlalchemy import text

from db import migrate
from db.engine import transaction


def prepare_database(database_url: str, echo=print) -> None:
    migrate.upgrade(database_url)
    with transaction(database_url) as conn:
        loaded = conn.execute(text("SELECT count(*) FROM releases")).scalar_one()
    if not loaded:
        result = load(database_url)
        echo(f"loaded ICD-10-CM release {result.name}: {result.codes:,} codes, "
             f"{result.billable:,} billable, in {result.seconds:.1f} s")


def load(database_url: str, path=None):
    from cache.invalidation import release_loaded
    from db.loader import bundled_release_path, load_release

    with transaction(database_url) as conn:
        result = load_release(conn, path or bundled_release_path())
    if result.created:
        release_loaded(result)
    return result
