"""Celery tasks: claims."""
