"""Keep each model's batch queue topped up with chunk hints (the 1-second beat task).

A ``batch.run_chunk`` message names only the model: the worker that takes it claims the most
urgent queued lines of that model at that moment (earliest deadline first, so 1 h windows go
before 24 h ones and a 24 h batch near its deadline before a fresh 1 h one). The message is
a hint: losing one, or a worker dropping one because it is busy, loses nothing; the next tick
sends another.
"""

from __future__ import annotations

import logging

import redis
from sqlalchemy import text

from inference_platform.celery_app import TASK_BATCH_CHUNK, queue_name
from inference_platform.platform import Platform
from inference_platform.tiers import BATCH

log = logging.getLogger(__name__)

# kombu's Redis transport keeps one list per priority step: "<queue>\x06\x16<step>".
_PRIORITY_SEP = "\x06\x16"
_STEPS = range(10)


def waiting(client: redis.Redis, queue: str) -> int:
    """Messages waiting in a queue, across kombu's emulated priority lists."""
    pipe = client.pipeline(transaction=False)
    for step in _STEPS:
        pipe.llen(queue if step == 0 else f"{queue}{_PRIORITY_SEP}{step}")
    return sum(int(n) for n in pipe.execute())


def dispatch(platform: Platform) -> None:
    """One tick: every model with queued batch lines gets hints up to ``batch_queue_depth``."""
    with platform.db.session() as s:
        models = list(
            s.scalars(
                text(
                    "SELECT DISTINCT model FROM batches "
                    "WHERE status = 'in_progress' AND model IS NOT NULL"
                )
            )
        )
    for model in models:
        kick(platform, model)


def kick(platform: Platform, model: str) -> int:
    """Top up one model's queue; returns how many hints were sent."""
    with platform.db.session() as s:
        queued = s.scalar(
            text(
                "SELECT EXISTS (SELECT 1 FROM requests WHERE model = :m AND tier = 'batch' "
                "AND status = 'queued')"
            ),
            {"m": model},
        )
    if not queued:
        return 0
    queue = queue_name(BATCH, model)
    missing = platform.settings.batch_queue_depth - waiting(platform.redis, queue)
    for _ in range(max(0, missing)):
        platform.celery.send_task(TASK_BATCH_CHUNK, args=[model], queue=queue)
    return max(0, missing)
