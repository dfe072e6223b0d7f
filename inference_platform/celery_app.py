"""The Celery app, its queues and reliability settings, shared by the API and the workers.

Queues are named ``<tier>.<model>`` (``realtime.demo-tiny``, ``flex.demo-tiny``,
``batch.demo-tiny``) so a worker hosting one model's engine only receives that model's work,
plus ``control`` for CPU-only housekeeping. The API enqueues by task name and never imports
``workers``.
"""

from __future__ import annotations

from datetime import timedelta

from celery import Celery
from kombu import Queue

from inference_platform.broker import SCHEMES
from inference_platform.catalog import TIERS, Catalog
from inference_platform.settings import Settings

CONTROL_QUEUE = "control"

# Task names: the contract between the API / control role and the GPU workers.
TASK_REALTIME = "realtime.generate"
# A hint that durable work (a background or flex response, batch lines) waits on a queue.
TASK_RUN_WORK = "work.run"
# Beat's one periodic task: dispatch, due webhook deliveries and, on its interval, the sweep.
TASK_TICK = "control.tick"
TASK_VALIDATE_BATCH = "control.validate_batch"
TASK_FINALIZE_BATCH = "control.finalize_batch"
# Seconds between ticks.
TICK_SECONDS = 1.0

# Longest any task may run. Kombu's Redis transport re-delivers an unacked message once the
# visibility timeout passes, whether or not its worker is alive, so the hard limit must stay
# below it; orphans are recovered much sooner by the sweeper's leases.
HARD_TIME_LIMIT = 3 * 3600
VISIBILITY_TIMEOUT = 4 * 3600


def queue_name(tier: str, model: str) -> str:
    return f"{tier}.{model}"


def make_celery(
    settings: Settings, catalog: Catalog, *, name: str = "inference_platform"
) -> Celery:
    """Build the Celery app; nothing connects until a task is sent or a worker starts."""
    app = Celery(name, set_as_current=False)
    queues = [Queue(CONTROL_QUEUE)]
    for spec in catalog:
        queues += [Queue(queue_name(tier, spec.name)) for tier in TIERS if spec.serves(tier)]
    transport = {
        "visibility_timeout": VISIBILITY_TIMEOUT,
        "socket_connect_timeout": 3,
        # A broker connection that stops answering (cut silently by a firewall or a NAT, a
        # paused server) must not hold a worker. kombu gives its commands no socket timeout
        # by default: Celery's consumer sends its worker heartbeat from its event loop, and
        # one sent on such a connection blocked that loop for good, so the worker stayed
        # alive and consumed nothing. Here a command gives up after 3 s (Redis answers in
        # well under one), and a consumer whose BRPOP (1 s) went unanswered for 3 s drops the
        # connection and reconnects; a connection idle for 2 s is pinged before it is used.
        "socket_timeout": 3,
        "socket_keepalive": True,
        "health_check_interval": 2,
        # Emulated priorities (separate lists per step).
        "queue_order_strategy": "priority",
        "priority_steps": list(range(10)),
    }
    app.conf.update(
        broker_url=settings.redis_url,
        # kombu's Redis transport, sharing one client per channel (see broker.py).
        **(
            {"broker_transport": "inference_platform.broker:Transport"}
            if settings.redis_url.split("://", 1)[0] in SCHEMES
            else {}
        ),
        broker_transport_options=transport,
        broker_connection_retry_on_startup=True,
        visibility_timeout=VISIBILITY_TIMEOUT,
        # JSON only: pickle would let anyone who can write to the broker run code.
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        # Job state lives in Postgres and the event channel, never in Celery's backend.
        task_ignore_result=True,
        result_backend=None,
        # Built once for all threads: Celery otherwise builds the (disabled) backend once per
        # thread for every task sent, and under the API's gevent workers each request is a
        # thread; building it scans installed packages and cost more than sending the task.
        result_backend_thread_safe=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=HARD_TIME_LIMIT,
        task_soft_time_limit=HARD_TIME_LIMIT - 300,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        task_queues=queues,
        task_default_queue=CONTROL_QUEUE,
        task_routes={"control.*": {"queue": CONTROL_QUEUE}},
        task_default_priority=5,
        worker_hijack_root_logger=False,
        broker_pool_limit=settings.broker_connections,
        # One entry, not one per duty: every entry costs beat a wake-up and the control
        # worker a message each time, and on a host the engine shares that is its time.
        beat_schedule={
            "tick": {
                "task": TASK_TICK,
                "schedule": timedelta(seconds=TICK_SECONDS),
                "options": {"expires": 5 * TICK_SECONDS},
            },
        },
    )
    return app
