"""Celery tasks: terms."""
