"""Tasks of the ``realtime.<model>`` queues."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from inference_platform.celery_app import TASK_REALTIME
from workers.runtime import current


@shared_task(name=TASK_REALTIME, ignore_result=True)
def generate(payloads: list[dict[str, Any]] | dict[str, Any]) -> None:
    """Hand realtime requests (an API process sends those that arrive together in one task)
    to this worker's realtime feed and return: their events go to the waiting API hosts, their
    usage to Postgres once they end."""
    for payload in payloads if isinstance(payloads, list) else [payloads]:
        current().push_live(payload)
