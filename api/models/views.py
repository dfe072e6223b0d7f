"""``GET /v1/models`` and ``GET /v1/models/{id}``."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api.context import platform
from inference_platform.catalog import ModelSpec

bp = Blueprint("models", __name__, url_prefix="/v1")


def _model(spec: ModelSpec) -> dict[str, object]:
    return {"id": spec.name, "object": "model", "created": spec.created, "owned_by": spec.owned_by}


@bp.get("/models")
def list_models() -> Response:
    """Every model in the catalog."""
    return jsonify({"object": "list", "data": [_model(s) for s in platform().catalog]})


@bp.get("/models/<path:model_id>")
def retrieve(model_id: str) -> Response:
    """One model, or 404 model_not_found."""
    return jsonify(_model(platform().model(model_id)))
