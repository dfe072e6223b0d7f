"""The control role's periodic duties, run by beat's one ``control.tick`` task.

Every tick tops up the hints of queues with queued work and sends the webhook deliveries that
are due; every ``sweep_interval_seconds`` it also sweeps (lost work, lapsed leases, deadlines,
batches). One periodic task instead of one per duty: each beat entry costs beat a wake-up and
the control worker a message every time, which on a host that shares its cores with an engine
comes out of the engine's steps.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from inference_platform.celery_app import TICK_SECONDS
from inference_platform.jobs import dispatch, sweep
from inference_platform.platform import Platform
from inference_platform.webhooks import delivery

log = logging.getLogger(__name__)


@dataclass
class Housekeeper:
    """One per control process: remembers when that process last swept."""

    platform: Platform
    swept: float = float("-inf")
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def tick(self) -> None:
        duties: list[Callable[[Platform], object]] = [dispatch.dispatch, delivery.deliver_due]
        if self._sweep_due():
            duties.append(sweep.sweep)
        for duty in duties:
            try:
                duty(self.platform)
            except Exception:  # one failing duty must not stop the others
                log.exception("housekeeping duty %s failed", duty.__name__)

    def _sweep_due(self) -> bool:
        # Half a tick early rather than a tick late: ticks do not land exactly on time.
        interval = self.platform.settings.sweep_interval_seconds - TICK_SECONDS / 2
        with self._lock:  # ticks may overlap when one is slow
            now = time.monotonic()
            if now - self.swept < interval:
                return False
            self.swept = now
            return True
