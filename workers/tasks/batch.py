"""Tasks of the ``batch.<model>`` queues."""

from __future__ import annotations

import threading
from typing import Any

from celery import shared_task
from celery.signals import worker_shutting_down

from inference_platform.batches import execute
from inference_platform.celery_app import TASK_BATCH_CHUNK
from workers.runtime import current

# Set on warm shutdown so a running task finishes its chunk but claims no new one.
_shutting_down = threading.Event()


@worker_shutting_down.connect
def _on_shutdown(**_: Any) -> None:
    _shutting_down.set()


@shared_task(name=TASK_BATCH_CHUNK, ignore_result=True)
def run_chunk(model: str) -> None:
    """Claim and run chunks of ``model``'s most urgent batch lines (the message is a hint)."""
    rt = current()
    execute.run(
        rt.platform,
        rt.engine_host(),
        model,
        chunk_size=rt.batch_size or rt.platform.settings.batch_chunk_size,
        stopping=_shutting_down,
    )
