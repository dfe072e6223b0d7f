"""Batch objects with live ``request_counts`` and ``usage`` while the batch runs.

The object's shape is ``endpoints.batches.protocol``'s; this module reads what it needs from
the request rows and usage records.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from inference_platform.batches.rows import CANCELLED, COMPLETED, EXPIRED, FAILED
from inference_platform.db.models import Batch
from inference_platform.endpoints.batches.protocol import batch_object, usage_object

__all__ = ["live_counts", "live_usage", "render", "usage_object"]

_FAILED_LINES = (FAILED, EXPIRED, CANCELLED)


def live_counts(session: Session, batch_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """``{batch_id: {total, completed, failed}}`` from the request rows. Lines that expired
    or were cancelled count as failed: they are in the error file."""
    out = {b: {"total": 0, "completed": 0, "failed": 0} for b in batch_ids}
    if not batch_ids:
        return out
    rows = session.execute(
        text(
            "SELECT batch_id, status, count(*) FROM requests WHERE batch_id = ANY(:ids) "
            "GROUP BY batch_id, status"
        ),
        {"ids": list(batch_ids)},
    )
    for batch_id, status, n in rows:
        counts = out[batch_id]
        counts["total"] += n
        if status == COMPLETED:
            counts["completed"] += n
        elif status in _FAILED_LINES:
            counts["failed"] += n
    return out


def live_usage(session: Session, batch_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    out = {b: usage_object() for b in batch_ids}
    if not batch_ids:
        return out
    rows = session.execute(
        text(
            "SELECT batch_id, coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), "
            "coalesce(sum(cached_tokens), 0) "
            "FROM usage_records WHERE batch_id = ANY(:ids) GROUP BY batch_id"
        ),
        {"ids": list(batch_ids)},
    )
    for batch_id, inp, outp, cached in rows:
        out[batch_id] = usage_object(int(inp), int(outp), int(cached))
    return out


def render(session: Session, batches: Sequence[Batch]) -> list[dict[str, Any]]:
    """Batch objects; counts and usage are frozen on terminal batches, live otherwise."""
    live = [b.id for b in batches if b.request_counts is None or b.usage is None]
    counts = live_counts(session, live)
    usage = live_usage(session, live)
    return [
        dict(batch_object(b, b.request_counts or counts[b.id], b.usage or usage[b.id]))
        for b in batches
    ]
