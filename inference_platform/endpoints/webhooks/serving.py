"""Serving ``/v1/webhook_endpoints``: create, retrieve, update, list, delete, rotate the
secret and send a test event, always filtered by owner (another tenant's id is a 404)."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from inference_platform import ids
from inference_platform.db.models import WebhookEndpoint
from inference_platform.endpoints.protocol import page
from inference_platform.endpoints.webhooks.protocol import endpoint_object
from inference_platform.errors import PlatformError, invalid, not_found
from inference_platform.platform import Platform
from inference_platform.webhooks import delivery, guard, signing
from inference_platform.webhooks.events import EVENT_TYPES, payload

PREFIX = "whep_"
KEEP_OLD_SECRET = timedelta(hours=24)


def _checked_url(platform: Platform, url: str) -> str:
    try:
        guard.check(url, allow_insecure=platform.settings.webhook_allow_insecure)
    except guard.UnsafeReceiver as exc:
        raise invalid(str(exc), param="url", code="invalid_url") from None
    return url


def _get(s: Session, owner: str, endpoint_id: str) -> WebhookEndpoint:
    row = s.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id, WebhookEndpoint.owner == owner
        )
    )
    if row is None:
        raise not_found(
            f"No webhook endpoint found with id '{endpoint_id}'.", param="webhook_endpoint_id"
        )
    return row


def create(platform: Platform, owner: str, body: dict[str, Any]) -> dict[str, Any]:
    now = datetime.now(UTC)
    row = WebhookEndpoint(
        id=ids.new_id(PREFIX),
        owner=owner,
        name=body["name"],
        url=_checked_url(platform, body["url"]),
        event_types=list(dict.fromkeys(body["event_types"])),
        secret=signing.new_secret(),
        failed_deliveries=0,
        created_at=now,
        updated_at=now,
    )
    with platform.db.session() as s:
        s.add(row)
    return endpoint_object(row, with_secret=True)


def retrieve(platform: Platform, owner: str, endpoint_id: str) -> dict[str, Any]:
    with platform.db.session() as s:
        return endpoint_object(_get(s, owner, endpoint_id))


def update(
    platform: Platform, owner: str, endpoint_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    with platform.db.session() as s:
        row = _get(s, owner, endpoint_id)
        changed = False
        if "url" in body and body["url"] != row.url:
            row.url, changed = _checked_url(platform, body["url"]), True
        if "name" in body and body["name"] != row.name:
            row.name, changed = body["name"], True
        if "event_types" in body:
            wanted = list(dict.fromkeys(body["event_types"]))
            if wanted != list(row.event_types):
                row.event_types, changed = wanted, True
        if row.disabled_at is not None:
            # The owner has looked at it: deliveries start again.
            row.disabled_at, row.failed_deliveries, changed = None, 0, True
        if changed:
            row.updated_at = datetime.now(UTC)
        return endpoint_object(row)


def list_endpoints(
    platform: Platform, owner: str, *, after: str | None, limit: int
) -> dict[str, Any]:
    """Newest first, ``limit`` per page, continuing after the endpoint ``after``."""
    with platform.db.session() as s:
        stmt = select(WebhookEndpoint).where(WebhookEndpoint.owner == owner)
        if after is not None:
            anchor = _get(s, owner, after)
            stmt = stmt.where(
                (WebhookEndpoint.created_at < anchor.created_at)
                | (
                    (WebhookEndpoint.created_at == anchor.created_at)
                    & (WebhookEndpoint.id < anchor.id)
                )
            )
        rows = s.scalars(
            stmt.order_by(WebhookEndpoint.created_at.desc(), WebhookEndpoint.id.desc()).limit(
                limit + 1
            )
        ).all()
        data = [endpoint_object(r) for r in rows[:limit]]
    return dict(page(data, has_more=len(rows) > limit))


def delete(platform: Platform, owner: str, endpoint_id: str) -> dict[str, Any]:
    """Deleting drops its pending deliveries too."""
    with platform.db.session() as s:
        s.delete(_get(s, owner, endpoint_id))
    return {"id": endpoint_id, "object": "webhook_endpoint.deleted", "deleted": True}


def rotate_secret(
    platform: Platform, owner: str, endpoint_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    now = datetime.now(UTC)
    with platform.db.session() as s:
        row = _get(s, owner, endpoint_id)
        if body.get("keep_old_secret_active_for_24_hours"):
            row.previous_secret, row.previous_secret_until = row.secret, now + KEEP_OLD_SECRET
        else:
            row.previous_secret, row.previous_secret_until = None, None
        row.secret, row.updated_at = signing.new_secret(), now
        return endpoint_object(row, with_secret=True)


def test(platform: Platform, owner: str, endpoint_id: str, event_type: str) -> dict[str, Any]:
    """Send a sample event now (from the API) and report the receiver's status code."""
    with platform.db.session() as s:
        row = _get(s, owner, endpoint_id)
        url, keys = row.url, delivery.signing_keys(row, datetime.now(UTC))
    sample_object = ("batch_" if event_type.startswith("batch.") else "resp_") + "test"
    event_id = "evt_test_" + secrets.token_hex(12)
    body = payload(event_id, event_type, sample_object, int(time.time()))
    outcome = delivery.post(platform, url, keys, event_id, body)
    if outcome.status_code is None:
        raise PlatformError(
            400,
            f"Could not deliver the test event to {url}: {outcome.error}",
            param="url",
            code="webhook_delivery_failed",
        )
    return {
        "object": "webhook_endpoint.test",
        "webhook_endpoint_id": endpoint_id,
        "event_type": event_type,
        "status_code": outcome.status_code,
        "success": True,
    }


def event_types() -> dict[str, Any]:
    return {"object": "list", "data": list(EVENT_TYPES)}
