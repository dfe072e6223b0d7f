"""The Batch API's core: create, retrieve and list, always filtered by owner.

Create checks what it can synchronously (endpoint, window, the input file: 400/404), writes the
batch row, commits, and only then enqueues validation; if that message is lost the sweeper
sends it again.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, select, tuple_

from inference_platform import ids
from inference_platform.batches.objects import render
from inference_platform.batches.outputs import ENDPOINTS
from inference_platform.celery_app import CONTROL_QUEUE, TASK_VALIDATE_BATCH
from inference_platform.db.models import Batch
from inference_platform.errors import invalid, not_found
from inference_platform.files.store import get_file
from inference_platform.platform import Platform

log = logging.getLogger(__name__)


def create(
    platform: Platform,
    owner: str,
    *,
    input_file_id: str,
    endpoint: str,
    completion_window: str,
    metadata: dict[str, str] | None = None,
    output_expires_seconds: int | None = None,
) -> dict[str, Any]:
    if endpoint not in ENDPOINTS:
        raise invalid(
            f"Invalid value for 'endpoint': this server runs batches for "
            f"{', '.join(ENDPOINTS)}; got {endpoint!r}.",
            param="endpoint",
        )
    windows = platform.settings.window_seconds()
    if completion_window not in windows:
        raise invalid(
            f"Invalid value for 'completion_window': expected one of {', '.join(windows)}; "
            f"got {completion_window!r}.",
            param="completion_window",
        )
    batch_id = ids.new_id(ids.BATCH)
    with platform.db.session() as s:
        source = get_file(s, owner, input_file_id)
        if source.kind != "upload" or source.purpose != "batch":
            raise invalid(
                f"File {input_file_id} has purpose '{source.purpose}'; a batch needs a file "
                "uploaded with purpose 'batch'.",
                param="input_file_id",
            )
        s.execute(
            insert(Batch).values(
                id=batch_id,
                owner=owner,
                endpoint=endpoint,
                input_file_id=input_file_id,
                completion_window=completion_window,
                status="validating",
                metadata_=metadata,
                expires_at=func.now() + timedelta(seconds=windows[completion_window]),
                dispatched_at=func.now(),
                output_expires_seconds=output_expires_seconds,
                total=0,
                priority=2,
            )
        )
        obj = render(s, [s.get(Batch, batch_id)])[0]  # type: ignore[list-item]
    enqueue_validation(platform, batch_id)
    return obj


def enqueue_validation(platform: Platform, batch_id: str) -> None:
    try:
        platform.celery.send_task(TASK_VALIDATE_BATCH, args=[batch_id], queue=CONTROL_QUEUE)
    except Exception as exc:  # committed already: the sweeper re-sends it
        log.warning("could not enqueue validation of %s: %s", batch_id, exc)


def retrieve(platform: Platform, owner: str, batch_id: str) -> dict[str, Any]:
    with platform.db.session() as s:
        batch = s.scalars(select(Batch).where(Batch.id == batch_id, Batch.owner == owner)).first()
        if batch is None:
            raise not_found(f"No batch found with id '{batch_id}'.", param="batch_id")
        return render(s, [batch])[0]


def list_batches(
    platform: Platform, owner: str, *, after: str | None, limit: int
) -> dict[str, Any]:
    """Newest first; ``after`` is the last id of the previous page."""
    with platform.db.session() as s:
        query = select(Batch).where(Batch.owner == owner)
        if after:
            cursor = s.scalars(select(Batch).where(Batch.id == after, Batch.owner == owner)).first()
            if cursor is None:
                return {
                    "object": "list",
                    "data": [],
                    "first_id": None,
                    "last_id": None,
                    "has_more": False,
                }
            query = query.where(
                tuple_(Batch.created_at, Batch.id) < tuple_(cursor.created_at, cursor.id)
            )
        rows = list(
            s.scalars(query.order_by(Batch.created_at.desc(), Batch.id.desc()).limit(limit + 1))
        )
        data = render(s, rows[:limit])
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(rows) > limit,
    }
