"""The Batch object, with live ``request_counts`` and ``usage`` while it runs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from inference_platform.batches.rows import CANCELLED, COMPLETED, EXPIRED, FAILED
from inference_platform.db.models import Batch

TERMINAL = ("completed", "failed", "expired", "cancelled")
_FAILED_LINES = (FAILED, EXPIRED, CANCELLED)


def _ts(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def usage_object(input_tokens: int = 0, output_tokens: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


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
            "SELECT batch_id, coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0) "
            "FROM usage_records WHERE batch_id = ANY(:ids) GROUP BY batch_id"
        ),
        {"ids": list(batch_ids)},
    )
    for batch_id, inp, outp in rows:
        out[batch_id] = usage_object(int(inp), int(outp))
    return out


def render(session: Session, batches: Sequence[Batch]) -> list[dict[str, Any]]:
    """Batch objects; counts and usage are frozen on terminal batches, live otherwise."""
    live = [b.id for b in batches if b.request_counts is None or b.usage is None]
    counts = live_counts(session, live)
    usage = live_usage(session, live)
    return [
        batch_object(b, b.request_counts or counts[b.id], b.usage or usage[b.id]) for b in batches
    ]


def batch_object(b: Batch, counts: dict[str, int], usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": b.id,
        "object": "batch",
        "endpoint": b.endpoint,
        "errors": b.errors,
        "input_file_id": b.input_file_id,
        "completion_window": b.completion_window,
        "status": b.status,
        "output_file_id": b.output_file_id,
        "error_file_id": b.error_file_id,
        "created_at": _ts(b.created_at),
        "in_progress_at": _ts(b.in_progress_at),
        "expires_at": _ts(b.expires_at),
        "finalizing_at": _ts(b.finalizing_at),
        "completed_at": _ts(b.completed_at),
        "failed_at": _ts(b.failed_at),
        "expired_at": _ts(b.expired_at),
        "cancelling_at": _ts(b.cancelling_at),
        "cancelled_at": _ts(b.cancelled_at),
        "request_counts": counts,
        "metadata": b.metadata_,
        "model": b.model,
        "usage": usage,
    }
