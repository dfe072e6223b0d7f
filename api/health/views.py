"""``GET /health``: is the API able to serve (database and broker reachable)?"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from api.context import platform

bp = Blueprint("health", __name__)


@bp.get("/health")
def health() -> Response:
    """200 when Postgres and Redis answer, else 503 with the OpenAI error envelope."""
    p = platform()
    checks: dict[str, str] = {}
    try:
        with p.db.session() as s:
            s.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # report, don't raise: this is the health page
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        p.redis.ping()
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    if healthy:
        return jsonify({"status": "ok", **checks})
    body = {
        "error": {
            "message": "Unhealthy: " + ", ".join(f"{k} {v}" for k, v in checks.items()),
            "type": "server_error",
            "param": None,
            "code": "service_unavailable",
        },
        **checks,
    }
    response = jsonify(body)
    response.status_code = 503
    return response
