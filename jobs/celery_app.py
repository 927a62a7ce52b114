"""The Celery app, configured for at-least-once work (Flask's `celery_init_app` pattern)."""

from __future__ import annotations

from celery import Celery, Task
from flask import Flask

from jobs.schedule import BEAT_SCHEDULE

# The longest task (one claim chunk, or a release load) is killed after TASK_HARD_LIMIT seconds;
# the broker redelivers an unacknowledged message only after VISIBILITY_TIMEOUT, which must be longer.
TASK_SOFT_LIMIT = 540
TASK_HARD_LIMIT = 600
VISIBILITY_TIMEOUT = 3600

QUEUES = ("claims", "terms", "maintenance")

CELERY_DEFAULTS = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "broker_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT},
    "task_serializer": "json",
    "result_serializer": "json",
    "accept_content": ["json"],
    "task_ignore_result": True,  # job state lives in PostgreSQL, not in a result backend
    "task_soft_time_limit": TASK_SOFT_LIMIT,
    "task_time_limit": TASK_HARD_LIMIT,
    "task_default_queue": "claims",
    "task_routes": {
        "jobs.claims.*": {"queue": "claims"},
        "jobs.terms.*": {"queue": "terms"},
        "jobs.maintenance.*": {"queue": "maintenance"},
    },
    "broker_connection_retry_on_startup": True,
    "worker_send_task_events": True,  # Flower
    "task_send_sent_event": True,
    "beat_schedule": BEAT_SCHEDULE,
    "timezone": "UTC",
}


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object({**CELERY_DEFAULTS, **app.config["CELERY"]})
    celery_app.conf.include = ["jobs.maintenance", "jobs.claims", "jobs.terms"]
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app
