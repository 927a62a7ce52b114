"""Beat schedule: each entry expires after its own period, so a backlog never piles up."""

from __future__ import annotations

from celery.schedules import crontab


def _every(task: str, seconds: float, **options) -> dict:
    return {"task": task, "schedule": seconds, "options": {"expires": seconds, **options}}


BEAT_SCHEDULE = {
    "create-partitions": _every("jobs.maintenance.create_partitions", 6 * 3600),
    "refresh-views": _every("jobs.maintenance.refresh_views", 15 * 60),
    "clean-cache-memory": _every("jobs.maintenance.clean_cache_memory", 10 * 60),
    "watch-releases": _every("jobs.maintenance.load_new_releases", 5 * 60),
    "reap-expired-chunks": _every("jobs.claims.reap_expired", 10),
    "purge-old-jobs": {"task": "jobs.maintenance.purge_old_jobs", "schedule": crontab(minute=17, hour=3),
                       "options": {"expires": 24 * 3600}},
}
