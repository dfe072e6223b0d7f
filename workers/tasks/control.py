"""Tasks of the ``control`` queue: housekeeping that must never wait behind GPU work."""

from __future__ import annotations

from celery import shared_task

from inference_platform import sweeper
from inference_platform.celery_app import TASK_SWEEP
from workers.runtime import current


@shared_task(name=TASK_SWEEP, ignore_result=True)
def sweep() -> None:
    """Re-enqueue lost work, retry lapsed leases, fail what exceeded its attempts."""
    sweeper.sweep(current().platform)
