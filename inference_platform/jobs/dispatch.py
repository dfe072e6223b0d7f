"""Telling workers that durable work is waiting: hints on the ``<tier>.<model>`` queues.

A hint names only a tier and a model; the worker that takes it claims the most urgent queued
work of that kind from Postgres. Losing a hint, or a worker ignoring one because its feed is
already running, loses nothing: ``dispatch`` tops every queue up again from the rows.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from kombu import Connection, Queue
from kombu.exceptions import ChannelError
from sqlalchemy import text

from inference_platform.celery_app import TASK_RUN_WORK, queue_name
from inference_platform.db.models import Request
from inference_platform.jobs import store
from inference_platform.platform import Platform

log = logging.getLogger(__name__)


def hint(platform: Platform, tier: str, model: str, count: int = 1) -> bool:
    """Publish ``count`` hints; False (logged) when the broker refused them."""
    try:
        for _ in range(count):
            platform.celery.send_task(
                TASK_RUN_WORK, args=[tier, model], queue=queue_name(tier, model)
            )
    except Exception as exc:
        log.warning("could not hint %s work for %s (the dispatcher retries): %s", tier, model, exc)
        return False
    return True


def enqueue(platform: Platform, **fields: Any) -> Request:
    """Write the job, commit, then hint its queue: the job is never lost."""
    row = store.insert(platform, **fields)
    hint(platform, row.tier, row.model)
    return row


def backlog(platform: Platform, queue: str) -> int:
    """Messages waiting in a worker queue, as the broker counts them."""
    # ``app.pool`` is Celery's broker connection pool (its stubs call it a producer pool).
    with cast(Connection, platform.celery.pool.acquire(block=True)) as conn:
        try:
            # (name, message_count, consumer_count); the stubs type it as the queue's name.
            declared: Any = Queue(queue, channel=conn.default_channel).queue_declare(passive=True)
        except ChannelError:  # no message has ever waited there
            return 0
    return int(declared.message_count)


def dispatch(platform: Platform) -> int:
    """Top up every queue that has queued work to ``batch_queue_depth`` hints (or fewer,
    when less work waits). Returns how many hints were sent."""
    with platform.db.session() as s:
        groups = s.execute(
            text(
                "SELECT tier, model, count(*) FROM requests WHERE status = 'queued' "
                "GROUP BY tier, model"
            )
        ).all()
    sent = 0
    depth = platform.settings.batch_queue_depth
    for tier, model, queued in groups:
        missing = min(int(queued), depth) - backlog(platform, queue_name(tier, model))
        if missing > 0 and hint(platform, tier, model, missing):
            sent += missing
    return sent
