"""``GET /health``: is the API able to serve (database and broker reachable)? Cheap, for
liveness probes: it answers from the last background probe, so a busy host answers at once.
``GET /ready``: can every catalog model be served in every tier it offers
(a live worker on each of its queues)? For readiness probes and ``up``'s banner."""

from __future__ import annotations

import threading

from flask import Blueprint, Response, current_app, jsonify

from api.context import platform
from api.health.probe import HealthProbe
from inference_platform import liveness
from inference_platform.celery_app import queue_name

bp = Blueprint("health", __name__)
_starting = threading.Lock()


@bp.get("/health")
def health() -> Response:
    """200 when Postgres and Redis answered the last probe, else 503 with the OpenAI error
    envelope. Answered from memory: see ``HealthProbe``."""
    checks = _probe().checks()
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


def _probe() -> HealthProbe:
    ext = current_app.extensions
    probe: HealthProbe | None = ext.get("health_probe")
    if probe is None:  # started on first use: the app factory connects to nothing
        with _starting:  # one probe per process, however many polls come first
            probe = ext.get("health_probe")
            if probe is None:
                probe = ext["health_probe"] = HealthProbe(platform().settings)
    return probe


@bp.get("/ready")
def ready() -> Response:
    """200 when every catalog model has a live worker for each tier it offers; else 503
    naming what is missing, e.g. ``{"missing": {"demo-tiny": ["realtime"]}}``."""
    p = platform()
    wanted = {queue_name(t, spec.name): (spec.name, t) for spec in p.catalog for t in spec.tiers}
    max_age = p.settings.worker_heartbeat_seconds * 3
    try:
        gone = liveness.missing_queues(p.redis, wanted, max_age)
    except Exception as exc:  # Redis away: not ready, and say why
        gone, broker = list(wanted), f"error: {type(exc).__name__}"
    else:
        broker = "ok"
    missing: dict[str, list[str]] = {}
    for queue in gone:
        model, tier = wanted[queue]
        missing.setdefault(model, []).append(tier)
    if not missing:
        return jsonify({"status": "ready", "models": sorted({m for m, _ in wanted.values()})})
    what = "; ".join(f"{m} ({', '.join(tiers)})" for m, tiers in missing.items())
    response = jsonify(
        {
            "error": {
                "message": f"Not ready: no live worker yet for {what}.",
                "type": "server_error",
                "param": None,
                "code": "not_ready",
            },
            "broker": broker,
            "missing": missing,
        }
    )
    response.status_code = 503
    response.headers["Retry-After"] = "5"
    return response
