"""A tenant's webhook endpoints: create (the signing secret shown once), rotate the secret
(the new one shown once), send a test event, recent deliveries, delete. Admin keys only, as
in the API; forms are loaded by the API's own request schemas."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from api.console import session
from api.console.web import Page, admin_page, bp, owner
from api.context import platform
from inference_platform.endpoints.protocol import load
from inference_platform.endpoints.webhooks import deliveries, serving
from inference_platform.endpoints.webhooks.protocol import (
    WebhookEndpointCreateRequestSchema,
    WebhookEndpointRotateSecretRequestSchema,
    WebhookEndpointTestRequestSchema,
)
from inference_platform.errors import PlatformError

_create = WebhookEndpointCreateRequestSchema()
_rotate = WebhookEndpointRotateSecretRequestSchema()
_test = WebhookEndpointTestRequestSchema()


def _list_page(created: dict[str, object] | None = None) -> str:
    found = serving.list_endpoints(platform(), owner(), after=None, limit=100)
    return render_template(
        "console/webhooks.html",
        endpoints=found["data"],
        event_types=serving.event_types()["data"],
        created=created,
    )


@bp.get("/webhooks")
@admin_page
def webhooks_page() -> str:
    """The tenant's endpoints and a form to add one."""
    return _list_page()


@bp.post("/webhooks")
@admin_page
def webhook_create() -> Page:
    """Register an endpoint; its signing secret is shown on this answer only."""
    body = {
        "name": request.form.get("name", ""),
        "url": request.form.get("url", ""),
        "event_types": request.form.getlist("event_types"),
    }
    try:
        created = serving.create(platform(), owner(), load(_create, body))
    except PlatformError as err:
        session.flash(err.message, "error")
        return redirect(url_for("console.webhooks_page"))
    return _list_page(created)


def _detail(endpoint_id: str, secret: str | None = None) -> str:
    return render_template(
        "console/webhook.html",
        endpoint=serving.retrieve(platform(), owner(), endpoint_id),
        deliveries=deliveries.recent(platform(), owner(), endpoint_id),
        event_types=serving.event_types()["data"],
        secret=secret,
    )


@bp.get("/webhooks/<endpoint_id>")
@admin_page
def webhook_page(endpoint_id: str) -> str:
    """One endpoint with its recent deliveries."""
    return _detail(endpoint_id)


@bp.post("/webhooks/<endpoint_id>/rotate")
@admin_page
def webhook_rotate(endpoint_id: str) -> str:
    """A new signing secret, shown on this answer only."""
    keep = request.form.get("keep_old_secret") == "on"
    body = load(_rotate, {"keep_old_secret_active_for_24_hours": keep})
    rotated = serving.rotate_secret(platform(), owner(), endpoint_id, body)
    return _detail(endpoint_id, secret=rotated["signing_secret"])


@bp.post("/webhooks/<endpoint_id>/test")
@admin_page
def webhook_test(endpoint_id: str) -> BaseResponse:
    """Send a sample event now and say what the receiver answered."""
    try:
        event_type = load(_test, {"event_type": request.form.get("event_type", "")})["event_type"]
        sent = serving.test(platform(), owner(), endpoint_id, event_type)
    except PlatformError as err:
        if err.status == 404:
            raise
        session.flash(err.message, "error")
    else:
        session.flash(
            f"Sent a test {event_type} event: the receiver answered {sent['status_code']}."
        )
    return redirect(url_for("console.webhook_page", endpoint_id=endpoint_id))


@bp.post("/webhooks/<endpoint_id>/delete")
@admin_page
def webhook_delete(endpoint_id: str) -> BaseResponse:
    serving.delete(platform(), owner(), endpoint_id)
    session.flash(f"Deleted {endpoint_id}.")
    return redirect(url_for("console.webhooks_page"))
