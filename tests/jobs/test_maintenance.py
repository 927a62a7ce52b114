"""Beat's upkeep tasks, run by a real worker from the real broker."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from db import partitions
from db.engine import get_engine
from jobs.schedule import BEAT_SCHEDULE
from tests.waiting import eventually


def test_every_beat_entry_expires_within_its_period():
    for name, entry in BEAT_SCHEDULE.items():
        period = entry["schedule"] if isinstance(entry["schedule"], (int, float)) else 24 * 3600
        assert 0 < entry["options"]["expires"] <= period, name


def test_the_worker_creates_partitions_ahead(celery_app, worker, database_url):
    engine = get_engine(database_url)

    def far_partition_exists() -> bool:
        with engine.connect() as conn:
            names = partitions.month_partitions(conn, "search_log")
        return any(name.endswith(_month_name(10)) for name in names)

    celery_app.send_task("jobs.maintenance.create_partitions", kwargs={"months_ahead": 10})
    assert eventually(far_partition_exists)


def test_the_worker_refreshes_views(celery_app, worker, database_url):
    engine = get_engine(database_url)
    query = f"maintenance-test-{uuid.uuid4().hex}"  # new each run: only this run's refresh can show it
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO search_log (query, results, latency_ms, cache_hit) "
                          "VALUES (:q, 3, 1.5, false)"), {"q": query})

    def counted() -> bool:
        with engine.connect() as conn:
            return bool(conn.execute(text(
                "SELECT searches FROM mv_popular_searches WHERE query = :q"), {"q": query}).scalar())

    assert not counted()

    celery_app.send_task("jobs.maintenance.refresh_views")
    assert eventually(counted)


def _month_name(n: int) -> str:
    from datetime import date

    today = date.today()
    year, month = divmod(today.month - 1 + n, 12)
    return f"_y{today.year + year}m{month + 1:02d}"
