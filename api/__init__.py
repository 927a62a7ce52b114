"""The HTTP API: thin views over db/, coding/ and cache/, jobs handed to Celery."""

from __future__ import annotations

from flask import Flask

from ops import config


def create_app(settings: config.Settings | None = None, **overrides) -> Flask:
    from api import auth, codes, context, errors, health, jobs, releases, search
    from jobs.celery_app import celery_init_app
    from ops.embedded import EmbeddedServices
    from ops.logs import setup_logging

    settings = settings or config.load()
    endpoints = EmbeddedServices(settings).endpoints()
    setup_logging(settings.log_level)
    app = Flask("icdq")
    app.json.sort_keys = False
    app.config.update(
        SETTINGS=settings,
        DATABASE_URL=endpoints.database_url,
        REDIS_URL=endpoints.redis_url,
        CACHE_URL=endpoints.cache_url,
        MAX_CONTENT_LENGTH=None,
        CELERY={"broker_url": endpoints.redis_url},
    )
    app.config.update(overrides)
    context.register(app)
    errors.register(app)
    for module in (health, releases, auth, jobs, codes, search):
        app.register_blueprint(module.bp)
    celery_init_app(app)
    return app
