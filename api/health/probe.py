"""The health probe behind ``GET /health``: Postgres and Redis checked in the background.

A health check that queried Postgres and Redis itself took a connection from the same pools
the requests use and yielded to every other request on each round trip: with 300 requests
arriving at once it waited behind them (2.8-4.1 s), and a load balancer would have taken a
busy host for a dead one. So one background loop per process checks both every
``INTERVAL`` seconds on connections of its own, and ``/health`` reads the last answer from
memory. An answer older than ``STALE_AFTER`` (the loop itself is stuck) counts as unhealthy.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from sqlalchemy import text

from inference_platform.db import Database
from inference_platform.settings import Settings

log = logging.getLogger(__name__)

INTERVAL = 1.0
STALE_AFTER = 10.0
# A probe that waits longer than this for Postgres or Redis reports it as failing.
TIMEOUT_SECONDS = 3


class HealthProbe:
    def __init__(self, settings: Settings) -> None:
        self._db = Database(settings.database_url, pool_size=1)
        self._redis = redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=TIMEOUT_SECONDS,
            socket_connect_timeout=TIMEOUT_SECONDS,
        )
        self._lock = threading.Lock()
        self._checks: dict[str, str] = {}
        self._checked = 0.0
        self._probe()  # the first request waits for one real answer
        threading.Thread(target=self._loop, name="health-probe", daemon=True).start()

    def checks(self) -> dict[str, str]:
        with self._lock:
            checks, checked = dict(self._checks), self._checked
        age = time.monotonic() - checked
        if age > STALE_AFTER:
            return {**checks, "probe": f"error: no answer for {age:.0f} s"}
        return checks

    def _loop(self) -> None:
        while True:
            time.sleep(INTERVAL)
            try:
                self._probe()
            except Exception:  # keep probing; a stale answer reports itself
                log.exception("health probe failed")

    def _probe(self) -> None:
        checks: dict[str, str] = {}
        try:
            with self._db.session() as s:
                s.execute(text(f"SET LOCAL statement_timeout = {TIMEOUT_SECONDS * 1000}"))
                s.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # report, don't raise: this is the health page
            checks["database"] = f"error: {type(exc).__name__}"
        try:
            self._redis.ping()
            checks["broker"] = "ok"
        except Exception as exc:
            checks["broker"] = f"error: {type(exc).__name__}"
        with self._lock:
            self._checks, self._checked = checks, time.monotonic()
