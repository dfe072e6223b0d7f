"""Batch state changes after validation: finalisation, expiry and cancellation.

``in_progress`` -> ``finalizing`` -> ``completed`` once no line is queued or running;
``expired`` when the window passes (unfinished lines get ``batch_expired``); ``cancelling`` ->
``cancelled`` (unfinished lines get ``batch_cancelled``). Results already written are never
touched. At the terminal state the counts, usage and result-file sizes are frozen on the rows.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from inference_platform.batches import rows
from inference_platform.batches.objects import live_counts, live_usage, render
from inference_platform.celery_app import CONTROL_QUEUE, TASK_FINALIZE_BATCH
from inference_platform.db.models import Batch, File
from inference_platform.errors import invalid, not_found
from inference_platform.files import results
from inference_platform.platform import Platform
from inference_platform.webhooks import outbox as webhooks

log = logging.getLogger(__name__)

VALIDATING, IN_PROGRESS, FINALIZING = "validating", "in_progress", "finalizing"
COMPLETED, FAILED, EXPIRED = "completed", "failed", "expired"
CANCELLING, CANCELLED = "cancelling", "cancelled"

EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."
CANCELLED_MESSAGE = "This request was not executed because the batch was cancelled."


def _now() -> datetime:
    return datetime.now(UTC)


# FOR NO KEY UPDATE: a validation that is inserting the batch's lines holds KEY SHARE locks on
# the batch row (foreign keys); a plain FOR UPDATE would wait for the whole validation.
_ROW_LOCK = {"key_share": True}


def _locked(session: Session, batch_id: str) -> Batch | None:
    """The batch row, locked, after its advisory lock (the documented lock order)."""
    rows.lock_batches(session, [batch_id])
    return session.get(Batch, batch_id, with_for_update=_ROW_LOCK, populate_existing=True)


def freeze(session: Session, batch: Batch) -> None:
    """Store final counts, usage and result-file sizes (the batch is terminal now)."""
    batch.request_counts = live_counts(session, [batch.id])[batch.id]
    batch.usage = live_usage(session, [batch.id])[batch.id]
    for kind, file_id in (
        (results.OUTPUT, batch.output_file_id),
        (results.ERROR, batch.error_file_id),
    ):
        if file_id is None:
            continue
        lines, size = results.stats(session.connection(), batch.id, kind)
        session.execute(update(File).where(File.id == file_id).values(bytes=size, line_count=lines))


def request_finalize(platform: Platform, batch_id: str) -> None:
    """Ask the control role to finalise; the sweeper does it anyway if the message is lost."""
    try:
        platform.celery.send_task(TASK_FINALIZE_BATCH, args=[batch_id], queue=CONTROL_QUEUE)
    except Exception as exc:  # a hint only
        log.warning("could not enqueue finalisation of %s: %s", batch_id, exc)


def finalize(platform: Platform, batch_id: str) -> str | None:
    """Move a batch with no unfinished lines to its terminal state; returns the new status."""
    with platform.db.session() as s:
        batch = s.get(Batch, batch_id, with_for_update=_ROW_LOCK)
        if batch is None or batch.status not in (IN_PROGRESS, FINALIZING, CANCELLING):
            return None
        if batch.status == IN_PROGRESS:
            if rows.has_unfinished(s, batch_id):
                return None
            batch.status, batch.finalizing_at = FINALIZING, _now()
    with platform.db.session() as s:
        batch = _locked(s, batch_id)
        if batch is None or batch.status not in (FINALIZING, CANCELLING):
            return None
        if batch.status == CANCELLING:
            # Normally closed by the cancel itself; this covers a line requeued in between.
            rows.close_unfinished(s, batch_id, rows.CANCELLED, "batch_cancelled", CANCELLED_MESSAGE)
            batch.status, batch.cancelled_at = CANCELLED, _now()
        elif rows.has_unfinished(s, batch_id):
            return None
        else:
            batch.status, batch.completed_at = COMPLETED, _now()
        s.flush()
        freeze(s, batch)
        webhooks.batch_ended(s, batch.owner, batch_id, batch.status)
        return batch.status


def expire(platform: Platform, batch_id: str) -> bool:
    """End a batch whose window has passed, keeping every finished line."""
    with platform.db.session() as s:
        batch = _locked(s, batch_id)
        if batch is None or batch.status not in (VALIDATING, IN_PROGRESS):
            return False
        if batch.expires_at is None or batch.expires_at > _now():
            return False
        _closed, running = rows.close_unfinished(
            s, batch_id, rows.EXPIRED, "batch_expired", EXPIRED_MESSAGE
        )
        batch.status, batch.expired_at, batch.lease_until = EXPIRED, _now(), None
        s.flush()
        freeze(s, batch)
        webhooks.batch_ended(s, batch.owner, batch_id, EXPIRED)
    abort(platform, running)
    return True


def cancel(platform: Platform, owner: str, batch_id: str) -> dict[str, Any]:
    """Cancel: unfinished lines get ``batch_cancelled``, finished ones stay; ``cancelling``."""
    with platform.db.session() as s:
        if s.scalar(select(Batch.id).where(Batch.id == batch_id, Batch.owner == owner)) is None:
            raise not_found(f"No batch found with id '{batch_id}'.", param="batch_id")
        batch = _locked(s, batch_id)
        assert batch is not None
        running: list[str] = []
        if batch.status in (COMPLETED, FAILED, EXPIRED, FINALIZING):
            raise invalid(
                f"Cannot cancel a batch with status '{batch.status}'.",
                param="batch_id",
                code="invalid_state",
            )
        if batch.status not in (CANCELLING, CANCELLED):
            _closed, running = rows.close_unfinished(
                s, batch_id, rows.CANCELLED, "batch_cancelled", CANCELLED_MESSAGE
            )
            batch.status, batch.cancelling_at, batch.lease_until = CANCELLING, _now(), None
            s.flush()
        obj = render(s, [batch])[0]
    abort(platform, running)
    if obj["status"] == CANCELLING:
        request_finalize(platform, batch_id)
    return obj


def abort(platform: Platform, line_ids: list[str]) -> None:
    """Stop generations of lines that were closed while running, freeing engine slots."""
    for line_id in line_ids:
        try:
            platform.events.cancel(line_id)
        except Exception as exc:  # the line is closed either way; this only saves GPU time
            log.warning("could not abort %s: %s", line_id, exc)
            return
