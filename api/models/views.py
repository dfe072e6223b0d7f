"""``GET /v1/models`` and ``GET /v1/models/{id}``."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api.context import platform
from inference_platform.endpoints.models import serving

bp = Blueprint("models", __name__, url_prefix="/v1")


@bp.get("/models")
def list_models() -> Response:
    """Every model in the catalog."""
    return jsonify(serving.list_models(platform()))


@bp.get("/models/<path:model_id>")
def retrieve(model_id: str) -> Response:
    """One model, or 404 model_not_found."""
    return jsonify(serving.retrieve(platform(), model_id))
