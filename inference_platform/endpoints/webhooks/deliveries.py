"""The recent deliveries of one of a tenant's webhook endpoints, for the web console."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from inference_platform.db.models import WebhookDelivery, WebhookEndpoint
from inference_platform.errors import not_found
from inference_platform.platform import Platform


def _ts(at: datetime | None) -> int | None:
    return None if at is None else int(at.timestamp())


def recent(
    platform: Platform, owner: str, endpoint_id: str, *, limit: int = 20
) -> list[dict[str, Any]]:
    """Newest first; another tenant's endpoint is a 404, as on every webhook route."""
    with platform.db.session() as s:
        found = s.scalar(
            select(WebhookEndpoint.id).where(
                WebhookEndpoint.id == endpoint_id, WebhookEndpoint.owner == owner
            )
        )
        if found is None:
            raise not_found(
                f"No webhook endpoint found with id '{endpoint_id}'.", param="webhook_endpoint_id"
            )
        rows = s.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        ).all()
        return [
            {
                "event_id": r.event_id,
                "event_type": r.event_type,
                "object_id": r.object_id,
                "status": r.status,
                "attempts": r.attempts,
                "last_status_code": r.last_status_code,
                "last_error": r.last_error,
                "created_at": _ts(r.created_at),
                "delivered_at": _ts(r.delivered_at),
            }
            for r in rows
        ]
