"""Test services: the real PostgreSQL and Redis (embedded under var/test unless the URLs are set),
migrated, with the bundled ICD-10-CM release loaded once per database."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ops import config
from ops.embedded import EmbeddedServices, Endpoints, export_env

ROOT = Path(__file__).resolve().parent.parent


def _ensure_database(url: str) -> None:
    """An installed server gets its test database created on first use."""
    import psycopg

    from db.engine import libpq_url

    conninfo = psycopg.conninfo.conninfo_to_dict(libpq_url(url))
    name = conninfo.get("dbname")
    admin = psycopg.conninfo.make_conninfo(**{**conninfo, "dbname": "postgres"})
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


@pytest.fixture(scope="session")
def settings() -> config.Settings:
    os.environ.setdefault("ICDQ_STATE_DIR", str(ROOT / "var" / "test"))
    return config.load()


@pytest.fixture(scope="session")
def endpoints(settings: config.Settings) -> Endpoints:
    from ops.setup import prepare_database

    services = EmbeddedServices(settings)
    found = services.start()
    if not settings.embedded_postgres:
        _ensure_database(found.database_url)
    os.environ.update(export_env(found))  # the app, workers and subprocesses see the same servers
    prepare_database(found.database_url, echo=lambda *_: None)
    yield found
    services.stop()


@pytest.fixture(scope="session")
def database_url(endpoints: Endpoints) -> str:
    return endpoints.database_url


@pytest.fixture
def conn(database_url: str):
    """A connection whose work is rolled back at the end of the test."""
    from db.engine import get_engine

    with get_engine(database_url).connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()


@pytest.fixture(scope="session")
def app(endpoints: Endpoints, settings: config.Settings):
    from api import create_app

    flask_app = create_app(config.load())
    flask_app.config["TESTING"] = True
    return flask_app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def celery_app(app):
    return app.extensions["celery"]


@pytest.fixture(scope="session")
def worker(celery_app):
    """A real Celery worker (threads, in this process) consuming every queue from the real broker."""
    from celery.contrib.testing.worker import start_worker

    with start_worker(celery_app, pool="threads", concurrency=2, perform_ping_check=False,
                      queues=["claims", "terms", "maintenance", "celery"], shutdown_timeout=30) as w:
        yield w
