"""Serving ``/v1/batches``: create, retrieve, list and cancel, always filtered by owner.

Create has its body checked by the schema (endpoint, window); here it checks the input file
(400/404), writes the batch row, commits, and only then enqueues validation.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, select, tuple_

from inference_platform import ids
from inference_platform.batches import lifecycle
from inference_platform.batches.objects import render
from inference_platform.batches.service import enqueue_validation
from inference_platform.db.models import Batch
from inference_platform.endpoints.protocol import Page, page
from inference_platform.errors import invalid, not_found
from inference_platform.files.store import get_file
from inference_platform.keys import REQUEST_KEY
from inference_platform.platform import Platform

__all__ = ["cancel", "create", "list_batches", "retrieve"]
cancel = lifecycle.cancel


def create(platform: Platform, owner: str, body: dict[str, Any]) -> dict[str, Any]:
    """A batch in status ``validating`` for a body loaded by BatchCreateRequestSchema."""
    window = platform.settings.window_seconds()[body["completion_window"]]
    expires = body.get("output_expires_after") or {}
    batch_id = ids.new_id(ids.BATCH)
    with platform.db.session() as s:
        source = get_file(s, owner, body["input_file_id"])
        if source.kind != "upload" or source.purpose != "batch":
            raise invalid(
                f"File {source.id} has purpose '{source.purpose}'; a batch needs a file "
                "uploaded with purpose 'batch'.",
                param="input_file_id",
            )
        s.execute(
            insert(Batch).values(
                api_key_id=REQUEST_KEY.get(),
                id=batch_id,
                owner=owner,
                endpoint=body["endpoint"],
                input_file_id=source.id,
                completion_window=body["completion_window"],
                status="validating",
                metadata_=body.get("metadata"),
                expires_at=func.now() + timedelta(seconds=window),
                dispatched_at=func.now(),
                output_expires_seconds=expires.get("seconds"),
                total=0,
                priority=2,
            )
        )
        obj = render(s, [s.get_one(Batch, batch_id)])[0]
    enqueue_validation(platform, batch_id)
    return obj


def retrieve(platform: Platform, owner: str, batch_id: str) -> dict[str, Any]:
    with platform.db.session() as s:
        batch = s.scalars(select(Batch).where(Batch.id == batch_id, Batch.owner == owner)).first()
        if batch is None:
            raise not_found(f"No batch found with id '{batch_id}'.", param="batch_id")
        return render(s, [batch])[0]


def list_batches(platform: Platform, owner: str, *, after: str | None, limit: int) -> Page:
    """Newest first; ``after`` is the last id of the previous page."""
    with platform.db.session() as s:
        query = select(Batch).where(Batch.owner == owner)
        if after:
            cursor = s.scalars(select(Batch).where(Batch.id == after, Batch.owner == owner)).first()
            if cursor is None:
                return page([])
            query = query.where(
                tuple_(Batch.created_at, Batch.id) < tuple_(cursor.created_at, cursor.id)
            )
        rows = list(
            s.scalars(query.order_by(Batch.created_at.desc(), Batch.id.desc()).limit(limit + 1))
        )
        return page(render(s, rows[:limit]), len(rows) > limit)
