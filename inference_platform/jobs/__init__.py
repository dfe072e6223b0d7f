"""Durable jobs over the ``requests`` table (background responses and flex work).

Postgres is the truth and a Celery message only a hint: ``enqueue`` writes the row and commits
before publishing the id; a worker ``claim``s by id (a conditional update, so duplicates are
no-ops), renews a lease while it runs and completes conditionally on its attempt, billing in
the same transaction; the control role's ``sweep`` retries what a lost message or a dead worker
left behind and fails it after the attempt cap. Batch lines (``batch_id`` set) are not ours.
"""

from inference_platform.jobs.dispatch import TASK_REALTIME_JOB, enqueue, send
from inference_platform.jobs.finish import finalize, stop
from inference_platform.jobs.runner import run
from inference_platform.jobs.store import RUNNING, STOPPED
from inference_platform.jobs.sweep import sweep

__all__ = [
    "RUNNING",
    "STOPPED",
    "TASK_REALTIME_JOB",
    "enqueue",
    "finalize",
    "run",
    "send",
    "stop",
    "sweep",
]
