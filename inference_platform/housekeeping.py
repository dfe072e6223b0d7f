"""The control role's periodic duties, run by beat's one ``control.tick`` task.

Every tick tops up the hints of queues with queued work, retries work whose lease lapsed and
sends the webhook deliveries that are due; every ``sweep_interval_seconds`` it also sweeps
(lost work, lapsed leases, deadlines, batches), and every ``capacity_interval_seconds`` it
re-estimates each model's capacity and the finish of every queued batch
(``capacity.estimate``). One periodic task instead of one per duty: each beat entry costs
beat a wake-up and the control worker a message every time, which on a host that shares its
cores with an engine comes out of the engine's steps.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from inference_platform.capacity import estimate
from inference_platform.celery_app import TICK_SECONDS
from inference_platform.jobs import dispatch, sweep
from inference_platform.platform import Platform
from inference_platform.webhooks import delivery

log = logging.getLogger(__name__)


@dataclass
class Housekeeper:
    """One per control process: remembers when that process last swept and estimated."""

    platform: Platform
    swept: float = float("-inf")
    estimated: float = float("-inf")
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def tick(self) -> None:
        # Lapsed leases every tick, not only with the sweep: a killed worker's work is
        # waiting for no one from the moment its lease lapses (on sweep ticks this finds
        # nothing left to do; the query is one index scan).
        duties: list[Callable[[Platform], object]] = [
            dispatch.dispatch,
            delivery.deliver_due,
            sweep.recover_lapsed,
        ]
        settings = self.platform.settings
        if self._due("swept", settings.sweep_interval_seconds):
            duties.append(sweep.sweep)
        if self._due("estimated", settings.capacity_interval_seconds):
            duties.append(estimate.refresh)
        for duty in duties:
            try:
                duty(self.platform)
            except Exception:  # one failing duty must not stop the others
                log.exception("housekeeping duty %s failed", duty.__name__)

    def _due(self, last: str, every: float) -> bool:
        # Half a tick early rather than a tick late: ticks do not land exactly on time.
        interval = every - TICK_SECONDS / 2
        with self._lock:  # ticks may overlap when one is slow
            now = time.monotonic()
            if now - getattr(self, last) < interval:
                return False
            setattr(self, last, now)
            return True
