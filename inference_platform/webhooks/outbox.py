"""Deliveries recorded in the transaction that ends a batch or a background response (an
outbox): they commit with the state change or not at all, so a restart loses none. One
statement each, cheap for tenants without endpoints; recording twice is harmless (one row
per endpoint and event)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from inference_platform.webhooks.events import BATCH_EVENTS

# The event id is derived from the event, so every path that records it agrees on one id.
_BATCH = text(
    """
    INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, object_id)
    SELECT e.id, 'evt_' || md5(:type || ':' || :object_id), :type, :object_id
    FROM webhook_endpoints e
    WHERE e.owner = :owner AND e.disabled_at IS NULL
      AND e.event_types @> jsonb_build_array(CAST(:type AS text))
    ON CONFLICT (endpoint_id, event_id) DO NOTHING
    """
)

_RESPONSES = text(
    """
    INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, object_id)
    SELECT e.id, 'evt_' || md5(v.type || ':' || r.id), v.type, r.id
    FROM requests r
    CROSS JOIN LATERAL (
        SELECT 'response.' || CASE r.status WHEN 'expired' THEN 'failed' ELSE r.status END
        AS type
    ) v
    JOIN webhook_endpoints e
      ON e.owner = r.owner AND e.disabled_at IS NULL
     AND e.event_types @> jsonb_build_array(v.type)
    WHERE r.id IN :ids AND r.background AND r.batch_id IS NULL
      AND r.endpoint = '/v1/responses'
      AND r.status IN ('completed', 'failed', 'cancelled', 'incomplete', 'expired')
    ON CONFLICT (endpoint_id, event_id) DO NOTHING
    """
).bindparams(bindparam("ids", expanding=True))


def batch_ended(session: Session, owner: str, batch_id: str, status: str) -> None:
    """Record ``batch.<status>`` for the owner's endpoints that want it."""
    event_type = BATCH_EVENTS.get(status)
    if event_type is not None:
        session.execute(_BATCH, {"type": event_type, "object_id": batch_id, "owner": owner})


def responses_ended(session: Session, request_ids: Collection[str]) -> None:
    """Record ``response.*`` for those of ``request_ids`` that are ended background responses
    (other work is skipped by the statement itself)."""
    if request_ids:
        session.execute(_RESPONSES, {"ids": list(request_ids)})
