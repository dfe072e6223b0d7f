"""Publishing job ids to the worker queues (a hint; Postgres holds the job)."""

from __future__ import annotations

import logging
from typing import Any

from inference_platform.celery_app import TASK_FLEX, queue_name
from inference_platform.db.models import Request
from inference_platform.jobs import store
from inference_platform.platform import Platform
from inference_platform.tiers import FLEX

log = logging.getLogger(__name__)

# Background responses in the default/priority tiers: durable like flex, served in realtime.
TASK_REALTIME_JOB = "realtime.run_job"

# Kombu's Redis transport keeps one list per priority step: ``queue`` and ``queue\x06\x16N``.
_PRIORITY_SEP = "\x06\x16"


def task_for(tier: str) -> str:
    return TASK_FLEX if tier == FLEX else TASK_REALTIME_JOB


def send(platform: Platform, tier: str, model: str, request_id: str) -> bool:
    """Enqueue one job id; False (logged) when the broker refused it — the sweeper
    publishes it again later, so the caller still answers with the id."""
    try:
        platform.celery.send_task(task_for(tier), args=[request_id], queue=queue_name(tier, model))
    except Exception as exc:
        log.warning("could not enqueue %s (the sweeper will retry): %s", request_id, exc)
        return False
    return True


def enqueue(platform: Platform, **fields: Any) -> Request:
    """Write the job, commit, then publish its id: the id is never lost."""
    row = store.insert(platform, **fields)
    send(platform, row.tier, row.model, row.id)
    return row


def backlog(platform: Platform, queue: str) -> int:
    """Messages waiting in a worker queue (all priority steps)."""
    names = [queue] + [f"{queue}{_PRIORITY_SEP}{step}" for step in range(1, 10)]
    pipe = platform.redis.pipeline(transaction=False)
    for name in names:
        pipe.llen(name)
    return sum(int(n) for n in pipe.execute())
