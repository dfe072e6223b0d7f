"""``GET /openapi.json`` (the generated document) and ``GET /docs/`` (Swagger UI, served from
the installed ``flask-swagger-ui`` package: no CDN)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify

# The package ships Swagger UI's files and a blueprint, without type hints.
from flask_swagger_ui import get_swaggerui_blueprint  # type: ignore[import-untyped]

from api.docs.openapi import TITLE, build_spec

bp = Blueprint("docs", __name__)


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 document of every route this server serves."""
    spec: dict[str, Any] | None = current_app.extensions.get("openapi")
    if spec is None:
        # Built once per process, on first use: the routes do not change after start-up.
        spec = current_app.extensions["openapi"] = build_spec(current_app)
    return jsonify(spec)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    viewer = get_swaggerui_blueprint("/docs", "/openapi.json", config={"app_name": TITLE})
    app.register_blueprint(viewer)
