"""Tasks for durable jobs: flex work on ``flex.<model>`` and background responses served in
realtime on ``realtime.<model>``. Both take only an id; the job lives in Postgres."""

from __future__ import annotations

from celery import shared_task

from inference_platform import jobs
from inference_platform.celery_app import TASK_FLEX
from workers.runtime import current


@shared_task(name=TASK_FLEX, ignore_result=True)
def run(request_id: str) -> None:
    """Claim and run one flex job (a duplicate message finds it taken and does nothing)."""
    rt = current()
    jobs.run(rt.platform, rt.engine_host(), request_id)


@shared_task(name=jobs.TASK_REALTIME_JOB, ignore_result=True)
def run_realtime(request_id: str) -> None:
    """Claim and run one background response in the realtime tier."""
    rt = current()
    jobs.run(rt.platform, rt.engine_host(), request_id)
