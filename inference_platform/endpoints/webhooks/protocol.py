"""``/v1/webhook_endpoints``: the request schemas and the ``webhook_endpoint`` object, as the
SDK's ``client.webhooks`` sends and reads them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate

from inference_platform.db.models import WebhookEndpoint
from inference_platform.endpoints.protocol import StrictBoolean, described
from inference_platform.webhooks.events import EVENT_TYPES
from inference_platform.webhooks.signing import hint

_EVENT = fields.String(
    validate=validate.OneOf(
        EVENT_TYPES, error="this server sends the events {choices}; got {input!r}."
    )
)


def _event_types(required: bool) -> fields.List[str]:
    return fields.List(
        _EVENT,
        required=required,
        validate=validate.Length(min=1, max=len(EVENT_TYPES)),
        metadata=described("The event types that trigger deliveries to this endpoint."),
    )


def _name(required: bool) -> fields.String:
    return fields.String(
        required=required,
        validate=validate.Length(min=1, max=200),
        metadata=described("A human-readable name for the endpoint."),
    )


def _url(required: bool) -> fields.String:
    return fields.String(
        required=required,
        validate=validate.Length(min=1, max=2048),
        metadata=described(
            "The HTTPS URL that receives deliveries (on a public address, unless the server "
            "allows insecure receivers)."
        ),
    )


class WebhookEndpointCreateRequestSchema(Schema):
    name = _name(True)
    url = _url(True)
    event_types = _event_types(True)


class WebhookEndpointUpdateRequestSchema(Schema):
    """Any update also re-enables an endpoint that repeated failures disabled."""

    name = _name(False)
    url = _url(False)
    event_types = _event_types(False)


class WebhookEndpointListRequestSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    after = fields.String(
        load_default=None, metadata=described("ID of the last endpoint from the previous page.")
    )
    limit = fields.Integer(
        load_default=20,
        validate=validate.Range(min=1, max=100),
        metadata=described("Endpoints per page, 1 to 100."),
    )


class WebhookEndpointRotateSecretRequestSchema(Schema):
    keep_old_secret_active_for_24_hours = StrictBoolean(
        load_default=False,
        metadata=described("Sign with the previous secret too for the next 24 hours."),
    )


class WebhookEndpointTestRequestSchema(Schema):
    event_type = fields.String(
        required=True,
        validate=_EVENT.validators,
        metadata=described("The event type to send as a sample delivery."),
    )


def _ts(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def endpoint_object(e: WebhookEndpoint, *, with_secret: bool = False) -> dict[str, Any]:
    """``webhook_endpoint`` (``WebhookEndpointWithSecret`` right after create and rotate).

    ``status`` is an extension: ``disabled`` after repeated failed deliveries."""
    obj: dict[str, Any] = {
        "id": e.id,
        "object": "webhook_endpoint",
        "created_at": _ts(e.created_at),
        "updated_at": _ts(e.updated_at),
        "name": e.name,
        "url": e.url,
        "event_types": list(e.event_types),
        "signing_secret_hint": hint(e.secret),
        "status": "disabled" if e.disabled_at is not None else "enabled",
    }
    if with_secret:
        obj["signing_secret"] = e.secret
    return obj
