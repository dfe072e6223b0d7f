"""Tasks of the ``control`` queue: housekeeping that must never wait behind GPU work."""

from __future__ import annotations

from celery import shared_task

from inference_platform.batches import lifecycle as batch_lifecycle
from inference_platform.batches import validate as batch_validate
from inference_platform.batches.checks import line_checks
from inference_platform.celery_app import TASK_FINALIZE_BATCH, TASK_TICK, TASK_VALIDATE_BATCH
from workers.runtime import current


@shared_task(name=TASK_TICK, ignore_result=True)
def tick() -> None:
    """Hint queues with queued work, send due webhooks, sweep on the sweep interval."""
    current().housekeeper().tick()


@shared_task(name=TASK_VALIDATE_BATCH, ignore_result=True)
def validate_batch(batch_id: str) -> None:
    """Check a batch's input file line by line and queue its lines (or fail it)."""
    batch_validate.validate(current().platform, batch_id, line_checks())


@shared_task(name=TASK_FINALIZE_BATCH, ignore_result=True)
def finalize_batch(batch_id: str) -> None:
    """Close a batch whose last line finished (or that is being cancelled)."""
    batch_lifecycle.finalize(current().platform, batch_id)
