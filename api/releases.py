"""Loaded releases."""

from __future__ import annotations

from flask import Blueprint, jsonify

from api.context import db
from db.codes import list_releases

bp = Blueprint("releases", __name__)


@bp.get("/v1/releases")
def releases():
    return jsonify({"releases": list_releases(db())})
