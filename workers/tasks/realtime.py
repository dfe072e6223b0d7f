"""Tasks of the ``realtime.<model>`` queues."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from inference_platform.celery_app import TASK_REALTIME
from workers.runtime import current


@shared_task(name=TASK_REALTIME, ignore_result=True)
def generate(payload: dict[str, Any]) -> None:
    """Hand one realtime request to this worker's realtime feed and return: its events go to
    the waiting API host, its usage to Postgres once it ends."""
    current().push_live(payload)
