"""The worker's Celery consumer: reconnects to the broker within seconds of its return, and can
be told to drop its connection and start over.

Celery's consumer waits 2, 4, 6 ... up to 30 s between attempts to reconnect (kombu's
defaults, which Celery passes no options to change): after a Redis outage of half a minute a
worker could stay away for as long again after Redis was back. Here it tries every second.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import redis
from celery.worker.consumer import Consumer as CeleryConsumer

log = logging.getLogger(__name__)

# Seconds between attempts to reconnect to the broker.
RECONNECT_SECONDS = 1.0

# The consumer of this process, once it started (the watchdog asks it to start over).
current: Consumer | None = None


class Consumer(CeleryConsumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        global current
        super().__init__(*args, **kwargs)
        current = self

    def ensure_connected(self, conn: Any) -> Any:
        conn.ensure_connection = functools.partial(
            conn.ensure_connection,
            interval_start=RECONNECT_SECONDS,
            interval_step=0,
            interval_max=RECONNECT_SECONDS,
        )
        return super().ensure_connected(conn)

    def start_over(self, reason: str) -> bool:
        """Drop the broker connection from inside the consumer's own loop, as a lost
        connection would: Celery then reconnects, declares its queues and consumes again.
        False when the consumer has no loop to do it in (not started, or shutting down)."""
        hub: Any = getattr(self, "hub", None)  # set by Celery's worker; not in its stubs
        if hub is None or self.connection is None:
            return False

        def drop() -> None:
            raise redis.exceptions.ConnectionError(reason)

        log.warning("restarting the broker consumer: %s", reason)
        hub.call_soon(drop)
        return True
