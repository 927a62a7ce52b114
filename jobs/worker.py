"""Worker and beat entry point: `celery -A jobs.worker worker`."""

from api import create_app

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
