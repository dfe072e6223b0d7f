"""Tasks of the ``control`` queue: housekeeping that must never wait behind GPU work."""

from __future__ import annotations

from celery import shared_task

from inference_platform.batches import lifecycle as batch_lifecycle
from inference_platform.batches import validate as batch_validate
from inference_platform.batches.checks import line_checks
from inference_platform.celery_app import (
    TASK_DELIVER_WEBHOOKS,
    TASK_DISPATCH,
    TASK_FINALIZE_BATCH,
    TASK_SWEEP,
    TASK_VALIDATE_BATCH,
)
from inference_platform.jobs import dispatch as work_dispatch
from inference_platform.jobs import sweep as work_sweep
from inference_platform.webhooks import delivery as webhook_delivery
from workers.runtime import current


@shared_task(name=TASK_SWEEP, ignore_result=True)
def sweep() -> None:
    """Re-enqueue lost work, retry lapsed leases, fail what exceeded its attempts."""
    work_sweep.sweep(current().platform)


@shared_task(name=TASK_VALIDATE_BATCH, ignore_result=True)
def validate_batch(batch_id: str) -> None:
    """Check a batch's input file line by line and queue its lines (or fail it)."""
    batch_validate.validate(current().platform, batch_id, line_checks())


@shared_task(name=TASK_DISPATCH, ignore_result=True)
def dispatch() -> None:
    """Hint every queue that has queued work no worker was told about."""
    work_dispatch.dispatch(current().platform)


@shared_task(name=TASK_FINALIZE_BATCH, ignore_result=True)
def finalize_batch(batch_id: str) -> None:
    """Close a batch whose last line finished (or that is being cancelled)."""
    batch_lifecycle.finalize(current().platform, batch_id)


@shared_task(name=TASK_DELIVER_WEBHOOKS, ignore_result=True)
def deliver_webhooks() -> None:
    """Send the webhook deliveries that are due (first tries and retries)."""
    webhook_delivery.deliver_due(current().platform)
