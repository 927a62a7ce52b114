"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from ops.health import check_dependencies

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    report = check_dependencies(current_app.config, current_app.extensions["celery"])
    return jsonify(report), (200 if report["ready"] else 503)
