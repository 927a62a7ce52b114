"""Beat-driven upkeep: partitions ahead, views fresh, cache memory in bounds, new releases loaded."""

from __future__ import annotations

import logging
from pathlib import Path

from celery import shared_task
from flask import current_app

from db import partitions
from db.engine import transaction

log = logging.getLogger("icdq.maintenance")


def _db_url() -> str:
    return current_app.config["DATABASE_URL"]


@shared_task(name="jobs.maintenance.create_partitions")
def create_partitions(months_ahead: int = 6) -> dict[str, int]:
    with transaction(_db_url()) as conn:
        created = partitions.ensure_month_partitions(conn, months_ahead)
    log.info("partitions created: %s", created)
    return created


@shared_task(name="jobs.maintenance.refresh_views")
def refresh_views() -> list[str]:
    with transaction(_db_url()) as conn:
        return partitions.refresh_views(conn)


@shared_task(name="jobs.maintenance.clean_cache_memory")
def clean_cache_memory() -> dict:
    from cache.memory import clean

    return clean(current_app.config["CACHE_URL"])


@shared_task(name="jobs.maintenance.load_new_releases")
def load_new_releases() -> list[str]:
    """Load every release XML dropped into <state dir>/releases that is not loaded yet."""
    from coding.tabular import ReleaseFormatError
    from db.loader import ReleaseConflict
    from ops.setup import load

    inbox = Path(current_app.config["SETTINGS"].state_dir) / "releases"
    loaded = []
    for path in sorted(inbox.glob("*.xml")) if inbox.is_dir() else []:
        try:
            result = load(_db_url(), path)
        except (ReleaseFormatError, ReleaseConflict) as err:
            log.warning("release file %s not loaded: %s", path.name, err)
            continue
        if result.created:
            loaded.append(result.name)
    return loaded


@shared_task(name="jobs.maintenance.purge_old_jobs")
def purge_old_jobs(keep_days: int = 30) -> dict:
    from db.jobs import purge_old_jobs as purge

    with transaction(_db_url()) as conn:
        purged = purge(conn, keep_days)
    log.info("purged %d old jobs; dropped partitions %s", purged["jobs"], purged["partitions_dropped"])
    return purged
