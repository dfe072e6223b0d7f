"""Retrying what failed: a new input file of a finished batch's failed, expired and
cancelled lines, taken from the original file as they were uploaded.

``endpoints.batches.serving.retry`` turns it into a new batch (admitted like any other),
whose ``metadata.retry_of`` names the original.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from inference_platform.batches.rows import CANCELLED, EXPIRED, FAILED
from inference_platform.db.models import Batch, File
from inference_platform.endpoints.batches.protocol import BATCH_FINAL_STATUSES
from inference_platform.errors import PlatformError, not_found
from inference_platform.files.store import upload_lines
from inference_platform.files.upload import store_lines
from inference_platform.platform import Platform

RETRIED = (FAILED, EXPIRED, CANCELLED)
# Batch statuses that can end before validation queued any line (a failed batch's file is bad).
ENDED_UNRUN = ("cancelled", "expired")


def conflict(message: str, code: str) -> PlatformError:
    # The SDK retries a 409 by default; asking again changes nothing until the batch ends.
    headers = {"x-should-retry": "false"}
    return PlatformError(409, message, code=code, param="batch_id", headers=headers)


def _has_lines(s: Session, batch_id: str) -> bool:
    found = s.scalar(text("SELECT 1 FROM requests WHERE batch_id = :b LIMIT 1"), {"b": batch_id})
    return found is not None


def failed_lines_file(platform: Platform, owner: str, batch_id: str) -> tuple[Batch, str]:
    """The original batch and the id of a new upload holding its lines to retry.

    404 for a batch that is not the caller's; 409 while it still runs, when none of its lines
    failed, expired or was cancelled, or when its input file is gone. A batch cancelled or
    expired before validation queued its lines retries every line of its file.
    """
    with platform.db.session() as s:
        batch = s.scalars(select(Batch).where(Batch.id == batch_id, Batch.owner == owner)).first()
        if batch is None:
            raise not_found(f"No batch found with id '{batch_id}'.", param="batch_id")
        if batch.status not in BATCH_FINAL_STATUSES:
            raise conflict(
                f"Batch {batch_id} is still {batch.status}; retry it once it has ended "
                "(or cancel it first).",
                "batch_not_finished",
            )
        wanted: set[int] | None = set(
            s.scalars(
                text("SELECT line_no FROM requests WHERE batch_id = :b AND status = ANY(:st)"),
                {"b": batch_id, "st": list(RETRIED)},
            )
        )
        if not wanted and batch.status in ENDED_UNRUN and not _has_lines(s, batch_id):
            wanted = None  # cancelled or expired while validating: none of its lines ran
        if wanted is not None and not wanted:
            raise conflict(
                f"Batch {batch_id} has no failed, expired or cancelled lines to retry.",
                "nothing_to_retry",
            )
        source = s.scalar(
            select(File.id).where(File.id == batch.input_file_id, File.deleted_at.is_(None))
        )
        if source is None:
            raise conflict(
                f"The input file {batch.input_file_id} of batch {batch_id} was deleted; its "
                "lines cannot be sent again.",
                "input_file_deleted",
            )
        s.expunge(batch)
    lines = (
        raw
        for line_no, raw in enumerate(upload_lines(platform, source), start=1)
        if wanted is None or line_no in wanted
    )
    expires = datetime.now(UTC) + timedelta(seconds=platform.settings.file_expiry_seconds)
    with platform.db.session() as s:
        made = store_lines(
            s, owner, f"{batch_id}_retry.jsonl", lines, expires, platform.settings.max_file_bytes
        )
        return batch, made.id
