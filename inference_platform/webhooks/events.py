"""The events this platform sends and their payloads, as ``openai.types.webhooks`` reads them."""

from __future__ import annotations

import json
from typing import Any

BATCH_EVENTS = {
    "completed": "batch.completed",
    "failed": "batch.failed",
    "cancelled": "batch.cancelled",
    "expired": "batch.expired",
}
# Request statuses of a background response -> its event (an expired one has failed).
RESPONSE_EVENTS = {
    "completed": "response.completed",
    "failed": "response.failed",
    "cancelled": "response.cancelled",
    "incomplete": "response.incomplete",
    "expired": "response.failed",
}
EVENT_TYPES = (*BATCH_EVENTS.values(), *dict.fromkeys(RESPONSE_EVENTS.values()))


def payload(event_id: str, event_type: str, object_id: str, created_at: int) -> bytes:
    """The body of one event: ``{"id", "object": "event", "created_at", "type", "data"}``."""
    event: dict[str, Any] = {
        "id": event_id,
        "object": "event",
        "created_at": created_at,
        "type": event_type,
        "data": {"id": object_id},
    }
    return json.dumps(event, separators=(",", ":")).encode()
