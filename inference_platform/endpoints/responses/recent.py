"""A tenant's recent background and flex responses, newest first, for the web console.

Each is the object ``GET /v1/responses/{id}`` returns (``store.to_object``), so the console
shows exactly what the API would.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from inference_platform.db.models import Request
from inference_platform.endpoints.responses import store
from inference_platform.generation import RESPONSES
from inference_platform.platform import Platform
from inference_platform.tiers import FLEX


def recent(platform: Platform, owner: str, *, limit: int = 50) -> list[dict[str, Any]]:
    """The owner's latest stored background or flex responses (not deleted)."""
    with platform.db.session() as s:
        rows = s.scalars(
            select(Request)
            .where(
                Request.owner == owner,
                Request.endpoint == RESPONSES,
                Request.batch_id.is_(None),
                Request.store.is_(True),
                Request.deleted_at.is_(None),
                or_(Request.background.is_(True), Request.tier == FLEX),
            )
            .order_by(Request.created_at.desc(), Request.id.desc())
            .limit(limit)
        ).all()
        return [store.to_object(row) for row in rows]
