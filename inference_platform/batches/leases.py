"""Lease renewal for the batch lines a worker process is running.

One daemon thread per process renews every held line every third of ``lease_seconds``, in one
statement. A line whose worker dies stops being renewed; once its lease lapses the sweeper
queues it again (or fails it after ``attempt_cap`` attempts).
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import text

from inference_platform.db import Database
from inference_platform.platform import Platform

log = logging.getLogger(__name__)

_RENEW = text(
    """
    UPDATE requests r SET lease_until = now() + make_interval(secs => :lease)
    FROM unnest(CAST(:ids AS text[]), CAST(:attempts AS int[])) AS h(id, attempt)
    WHERE r.id = h.id AND r.attempt = h.attempt AND r.status = 'in_progress'
    """
)


class LeaseKeeper:
    def __init__(self, db: Database, lease_seconds: float) -> None:
        self.db = db
        self.lease_seconds = lease_seconds
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def hold(self, lines: list[tuple[str, int]]) -> None:
        with self._lock:
            self._held.update(lines)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="batch-leases", daemon=True)
                self._thread.start()

    def release(self, line_ids: list[str]) -> None:
        with self._lock:
            for line_id in line_ids:
                self._held.pop(line_id, None)

    def renew(self) -> None:
        with self._lock:
            held = list(self._held.items())
        if not held:
            return
        with self.db.session() as s:
            s.execute(
                _RENEW,
                {
                    "lease": self.lease_seconds,
                    "ids": [h[0] for h in held],
                    "attempts": [h[1] for h in held],
                },
            )

    def _run(self) -> None:
        while True:
            time.sleep(self.lease_seconds / 3)
            try:
                self.renew()
            except Exception as exc:  # Postgres blips must not kill the thread
                log.warning("renewing batch leases failed: %s", exc)


_keepers: dict[int, LeaseKeeper] = {}
_keepers_lock = threading.Lock()


def keeper(platform: Platform) -> LeaseKeeper:
    """The process's keeper for this platform's database."""
    with _keepers_lock:
        found = _keepers.get(id(platform))
        if found is None:
            found = LeaseKeeper(platform.db, platform.settings.lease_seconds)
            _keepers[id(platform)] = found
        return found
