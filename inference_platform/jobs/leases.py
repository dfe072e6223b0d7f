"""Lease renewal for the work a worker process is running (jobs and batch lines alike).

One thread per process renews every held lease in a single update, a third of a lease apart,
whether or not tokens are flowing (work waiting for an engine slot must not look dead). Work
whose lease could not be renewed is no longer ours (cancelled, expired, or handed to another
attempt after a stall): its generation is aborted so the slot goes to work that counts.
"""

from __future__ import annotations

import logging
import threading
import time

from inference_platform.engines.host import EngineHost
from inference_platform.jobs import store
from inference_platform.platform import Platform

log = logging.getLogger(__name__)


class LeaseKeeper:
    def __init__(self, platform: Platform, host: EngineHost) -> None:
        self.platform = platform
        self.host = host
        self.lease = platform.settings.lease_seconds
        self._held: dict[str, int] = {}
        self._lost: set[str] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        # When a renewal round last ended, renewed or not (monotonic): the worker's watchdog
        # tells a keeper waiting on a dead database from one that is itself stuck.
        self.turned_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="leases", daemon=True)
        self._thread.start()

    def hold(self, request_id: str, attempt: int) -> None:
        with self._lock:
            self._held[request_id] = attempt
            self._lost.discard(request_id)

    def release(self, request_id: str) -> None:
        with self._lock:
            self._held.pop(request_id, None)
            self._lost.discard(request_id)

    def lost(self, request_id: str) -> bool:
        with self._lock:
            return request_id in self._lost

    def stop(self) -> None:
        self._stopping.set()

    @property
    def holding(self) -> int:
        with self._lock:
            return len(self._held)

    def _run(self) -> None:
        while not self._stopping.wait(self.lease / 3):
            try:
                self._renew()
            except Exception:  # nothing may end this thread: a lapsed lease retries the work
                log.exception("lease renewal failed")
            self.turned_at = time.monotonic()

    def _renew(self) -> None:
        with self._lock:
            held = dict(self._held)
        if not held:
            return
        try:
            alive = store.renew(self.platform, held, self.lease)
        except Exception as exc:  # Postgres away: try again; the lease has slack
            log.warning("lease renewal failed: %s", exc)
            return
        for request_id in set(held) - alive:
            with self._lock:
                if self._held.get(request_id) != held[request_id]:
                    continue  # finished meanwhile
                self._lost.add(request_id)
            log.info("lease of %s lost; aborting its generation", request_id)
            self.host.abort_group(request_id)
