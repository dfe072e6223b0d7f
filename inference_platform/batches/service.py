"""Enqueueing a batch's validation on the control queue.

The batch row is committed first; if this message is lost, the sweeper sends it again.
"""

from __future__ import annotations

import logging

from inference_platform.celery_app import CONTROL_QUEUE, TASK_VALIDATE_BATCH
from inference_platform.platform import Platform

log = logging.getLogger(__name__)


def enqueue_validation(platform: Platform, batch_id: str) -> None:
    try:
        platform.celery.send_task(TASK_VALIDATE_BATCH, args=[batch_id], queue=CONTROL_QUEUE)
    except Exception as exc:  # committed already: the sweeper re-sends it
        log.warning("could not enqueue validation of %s: %s", batch_id, exc)
