"""Tasks of the ``realtime.<model>`` queues."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from inference_platform.celery_app import TASK_REALTIME
from inference_platform.generation import stream_to_channel
from inference_platform.usage import record_one
from workers.runtime import current


@shared_task(name=TASK_REALTIME, ignore_result=True)
def generate(payload: dict[str, Any]) -> None:
    """Generate one realtime request, streaming its events to the waiting API host."""
    rt = current()
    result = stream_to_channel(
        rt.engine_host(),
        rt.platform.events,
        payload["id"],
        payload["endpoint"],
        payload["body"],
        tier=payload["tier"],
        default_max_tokens=rt.platform.settings.default_max_tokens,
        stream=payload.get("stream", True),
        worker={"worker": rt.name, "queue": rt.queues[0] if rt.queues else ""},
    )
    if result is not None:
        record_one(
            rt.platform.db,
            request_id=payload["id"],
            owner=payload["owner"],
            model=payload["model"],
            tier=payload["tier"],
            endpoint=payload["endpoint"],
            input_tokens=result.prompt_tokens,
            output_tokens=result.completion_tokens,
        )
