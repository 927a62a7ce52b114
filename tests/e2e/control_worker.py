"""A worker WITHOUT at-least-once delivery, for the fault tests' control runs: acks on receipt, so a
killed pool process loses its message. Shows the tests can see a loss when recovery is missing."""

from jobs.worker import celery_app, flask_app  # noqa: F401 - the celery CLI finds `celery_app` here

celery_app.conf.task_acks_late = False
celery_app.conf.task_reject_on_worker_lost = False
