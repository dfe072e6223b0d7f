"""Serving ``/v1/batches``: create, retrieve, list and cancel, always filtered by owner.

Create has its body checked by the schema (endpoint, window); here it checks the input file
(400/404), writes the batch row, commits, and only then enqueues validation.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, tuple_

from inference_platform import ids
from inference_platform.batches import lifecycle
from inference_platform.batches.objects import render
from inference_platform.batches.retry import failed_lines_file
from inference_platform.batches.service import enqueue_validation
from inference_platform.capacity import admission
from inference_platform.capacity.model import Demand
from inference_platform.db.models import Batch, File
from inference_platform.endpoints.output_limits import context_window
from inference_platform.endpoints.protocol import Page, page
from inference_platform.errors import PlatformError, invalid, not_found
from inference_platform.files import store
from inference_platform.files.stats import demand_of, largest_limit
from inference_platform.files.store import get_file
from inference_platform.keys import REQUEST_KEY
from inference_platform.platform import Platform
from inference_platform.tiers import BATCH

__all__ = ["cancel", "create", "list_batches", "retrieve", "retry"]
cancel = lifecycle.cancel


def _admit(
    platform: Platform, source: File, window: str
) -> tuple[dict[str, Any] | None, datetime | None]:
    """The batch's demand and estimated finish; a 429 when it cannot finish in ``window``.

    Files without counts (uploaded before they were kept) and files that validation will
    refuse anyway (several models, a model not served, a line whose output limit is past the
    model's context window) are let through unchecked: validation then names the bad line,
    where admission would count its impossible limit as days of work and refuse with a 429.
    """
    found = demand_of(source.stats, platform.settings.default_max_tokens)
    if found is None:
        return None, None
    model, counts = found
    spec = platform.catalog.get(model)
    if spec is None or not spec.serves(BATCH):
        return None, None
    context = context_window(spec)
    if context is not None and largest_limit(source.stats, model) > context:
        return None, None
    eta = admission.admit_batch(platform, model, window, Demand(**counts))
    return {**counts, "model": model}, datetime.fromtimestamp(eta, UTC)


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
        demand, eta = _admit(platform, source, body["completion_window"])
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
                demand=demand,
                estimated_completion_at=eta,
            )
        )
        obj = render(s, [s.get_one(Batch, batch_id)])[0]
    enqueue_validation(platform, batch_id)
    return obj


def retry(
    platform: Platform, owner: str, batch_id: str, completion_window: str | None = None
) -> dict[str, Any]:
    """A new batch of a finished batch's failed, expired and cancelled lines, in the same
    window unless another is given; ``metadata.retry_of`` names the original."""
    window = completion_window
    original, file_id = failed_lines_file(platform, owner, batch_id)
    if window is None and original.completion_window not in platform.settings.window_seconds():
        window = "24h"  # the original's window is no longer offered
    metadata = dict(original.metadata_ or {})
    metadata.pop("retry_of", None)
    # Batch metadata holds at most 16 pairs: retry_of takes the last place if need be.
    metadata = {**dict(list(metadata.items())[:15]), "retry_of": original.id}
    body: dict[str, Any] = {
        "input_file_id": file_id,
        "endpoint": original.endpoint,
        "completion_window": window or original.completion_window,
        "metadata": metadata,
    }
    if original.output_expires_seconds is not None:
        body["output_expires_after"] = {
            "anchor": "created_at",
            "seconds": original.output_expires_seconds,
        }
    try:
        return create(platform, owner, body)
    except PlatformError:
        store.delete(platform, owner, file_id)  # refused: the file made for it goes too
        raise


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
