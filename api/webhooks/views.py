"""``/v1/webhook_endpoints`` and ``/v1/webhook_event_types``: what ``client.webhooks`` calls."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api.auth import require_admin
from api.context import owner, platform
from api.validation import body, optional_body, query
from inference_platform.endpoints.webhooks import serving
from inference_platform.endpoints.webhooks.protocol import (
    WebhookEndpointCreateRequestSchema,
    WebhookEndpointListRequestSchema,
    WebhookEndpointRotateSecretRequestSchema,
    WebhookEndpointTestRequestSchema,
    WebhookEndpointUpdateRequestSchema,
)

bp = Blueprint("webhooks", __name__, url_prefix="/v1")
# Usage, costs and webhook endpoints are the organization's: admin keys only, as at OpenAI.
bp.before_request(require_admin)
_create = WebhookEndpointCreateRequestSchema()
_update = WebhookEndpointUpdateRequestSchema()
_list = WebhookEndpointListRequestSchema()
_rotate = WebhookEndpointRotateSecretRequestSchema()
_test = WebhookEndpointTestRequestSchema()


@bp.post("/webhook_endpoints")
def create() -> Response:
    """Register an endpoint; the answer carries its signing secret, shown this once."""
    return jsonify(serving.create(platform(), owner(), body(_create)))


@bp.get("/webhook_endpoints")
def list_endpoints() -> Response:
    """The caller's endpoints, newest first."""
    return jsonify(serving.list_endpoints(platform(), owner(), **query(_list)))


@bp.get("/webhook_endpoints/<endpoint_id>")
def retrieve(endpoint_id: str) -> Response:
    return jsonify(serving.retrieve(platform(), owner(), endpoint_id))


@bp.post("/webhook_endpoints/<endpoint_id>")
def update(endpoint_id: str) -> Response:
    """Change the name, URL or events (and re-enable a disabled endpoint)."""
    return jsonify(serving.update(platform(), owner(), endpoint_id, body(_update)))


@bp.delete("/webhook_endpoints/<endpoint_id>")
def delete(endpoint_id: str) -> Response:
    return jsonify(serving.delete(platform(), owner(), endpoint_id))


@bp.post("/webhook_endpoints/<endpoint_id>/rotate_secret")
def rotate_secret(endpoint_id: str) -> Response:
    """A new signing secret, shown this once; optionally the old one signs for 24 h more."""
    return jsonify(serving.rotate_secret(platform(), owner(), endpoint_id, optional_body(_rotate)))


@bp.post("/webhook_endpoints/<endpoint_id>/test")
def test(endpoint_id: str) -> Response:
    """Send a sample event now and report what the receiver answered."""
    event_type = body(_test)["event_type"]
    return jsonify(serving.test(platform(), owner(), endpoint_id, event_type))


@bp.get("/webhook_event_types")
def event_types() -> Response:
    return jsonify(serving.event_types())
