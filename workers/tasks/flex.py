"""Tasks for durable jobs: flex work on ``flex.<model>`` and background responses served in
realtime on ``realtime.<model>``. Both take only an id; the job lives in Postgres."""

from __future__ import annotations

from celery import Task, shared_task

from inference_platform import jobs
from inference_platform.celery_app import TASK_FLEX
from workers.runtime import current

# How long a flex message waits before it is tried again when this worker has no room.
RETRY_COUNTDOWN = 1.0


@shared_task(name=TASK_FLEX, bind=True, ignore_result=True)
def run(self: Task, request_id: str) -> None:
    """Claim and run one flex job (a duplicate message finds it taken and does nothing)."""
    rt = current()
    gate = rt.background_tasks
    if gate is not None and not gate.acquire(blocking=False):
        # This engine also serves realtime and its flex share is full: free the thread now
        # and send the job back to its queue (the row stays queued in Postgres meanwhile).
        queue = (self.request.delivery_info or {}).get("routing_key")
        self.apply_async(args=[request_id], queue=queue, countdown=RETRY_COUNTDOWN)
        return
    try:
        jobs.run(rt.platform, rt.engine_host(), request_id)
    finally:
        if gate is not None:
            gate.release()


@shared_task(name=jobs.TASK_REALTIME_JOB, ignore_result=True)
def run_realtime(request_id: str) -> None:
    """Claim and run one background response in the realtime tier."""
    rt = current()
    jobs.run(rt.platform, rt.engine_host(), request_id)
