"""The hint task of the ``<tier>.<model>`` queues: durable work waits in Postgres."""

from __future__ import annotations

from celery import shared_task

from inference_platform.celery_app import TASK_RUN_WORK
from workers.runtime import current


@shared_task(name=TASK_RUN_WORK, ignore_result=True)
def run(tier: str, model: str) -> None:
    """Wake this worker's feed for ``tier``; it claims the work itself (the hint is only a
    hint: a duplicate, or one for work another worker took, costs a query)."""
    current().wake(tier, model)
