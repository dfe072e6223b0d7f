"""Workers that come back by themselves: the mix of faults that once left workers alive but
idle (a Redis FLUSHALL, a kill -9 of the control role, a Postgres restart, a Postgres outage, a
Redis that goes silent, connections to Redis cut silently), with the workers never killed or
restarted from outside. After each fault ends, every worker must serve again within
``RECOVERY_SECONDS``: its heartbeat fresh, the batch-only worker finishing batch lines, the
realtime+flex worker answering realtime requests and running a flex response.

Every process reaches Redis through a ``Blackhole`` proxy, so Redis can go silent for them
(connections open, nothing answered) while the harness still reaches it directly.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from tests.faults.harness import ENGINE_ARGS, MODEL, FaultRun
from tests.helpers import eventually

RECOVERY_SECONDS = 15.0
PROBE_EVERY_SECONDS = 0.5
SLOW_TOKENS_PER_SECOND = 40
# Batch lines the batch worker finishes per second at that speed, about (a 2-core host).
LINES_PER_SECOND = 100
BATCH_WORKER = ["worker", "--queues", "batch", "--model", MODEL, "--batch-size", "32"]
REALTIME_WORKER = ["worker", "--queues", "realtime,flex", "--model", MODEL, "--batch-size", "16"]


@dataclass
class Recovery:
    """Seconds from a fault's end until each check first passed (None: not within the wait)."""

    fault: str
    seconds: dict[str, float | None] = field(default_factory=dict)

    @property
    def worst(self) -> float:
        return max((s if s is not None else float("inf")) for s in self.seconds.values())


class RecoveryRun(FaultRun):
    """A private stack with a batch-only and a realtime+flex worker, Redis behind a proxy."""

    def __init__(self, home: Path) -> None:
        super().__init__(home, proxy=True)
        # A slower engine, so that a batch outlasts a long fault with fewer lines.
        slow = {**ENGINE_ARGS, "tokens_per_second": SLOW_TOKENS_PER_SECOND}
        models = [{"name": MODEL, "engine": "simulated", "engine_args": slow}]
        self.settings = self.settings.replace(models=json.dumps(models))
        self.stack.settings = self.settings
        self.direct = self.services.redis()
        self.pids: dict[str, int] = {}

    def start(self) -> None:
        self.stack.start("web", ["web"])
        self.stack.start("batch", BATCH_WORKER)
        self.stack.start("realtime", REALTIME_WORKER)
        self.stack.start("control", ["control"])
        self.stack.wait_api()
        for queue in (f"batch.{MODEL}", f"realtime.{MODEL}", "control"):
            self.stack.wait_queue(queue)
        self.pids = {n: self.stack.procs[n].pid for n in ("batch", "realtime")}

    def keep_lines_queued(self, least: int) -> None:
        """Submit another batch when fewer than ``least`` lines wait (so that progress after
        a fault shows a serving worker, not the end of the work)."""
        if self._queued() < least:
            self.submit_batch(2 * least)
            # Validated before the next fault, which could otherwise delay the validation.
            eventually(self._queued, lambda n: n >= least, timeout=60, what="queued lines")

    def _queued(self) -> int:
        with self.db.session() as s:
            return int(s.scalar(text("SELECT count(*) FROM requests WHERE status = 'queued'")) or 0)

    # -- faults -----------------------------------------------------------------------------
    def silence_redis(self, seconds: float) -> None:
        assert self.proxy is not None
        self.proxy.dark()
        self._stop.wait(seconds)
        self.proxy.light()

    def cut_redis_connections(self) -> None:
        """Every connection to Redis open now goes silent for good (new ones work)."""
        assert self.proxy is not None
        self.proxy.sever()

    # -- checks -----------------------------------------------------------------------------
    def recovery(self, fault: str, wait: float) -> Recovery:
        """Seconds until each worker serves again, from now (the fault just ended). Each
        check runs on a thread of its own, so a slow one does not delay the others."""
        ended = time.monotonic()
        found = Recovery(fault)
        done_before = self._lines_done()
        checks: dict[str, Callable[[], bool]] = {
            "batch heartbeat": lambda: self._beat_fresh(f"batch.{MODEL}"),
            "realtime heartbeat": lambda: self._beat_fresh(f"realtime.{MODEL}"),
            "batch lines": lambda: self._lines_done() > done_before,
            "realtime request": self._realtime_ok,
            "flex response": self._flex_ran(),
        }

        def watch(name: str, check: Callable[[], bool]) -> None:
            while time.monotonic() - ended < wait and name not in found.seconds:
                if _passes(check):
                    found.seconds.setdefault(name, round(time.monotonic() - ended, 1))
                    return
                time.sleep(0.2)

        # A realtime request that met the fault may hang until its timeout and hide that
        # the next one would be served: a fresh one starts every half second.
        probes = [
            threading.Thread(target=watch, args=("realtime request", self._realtime_ok))
            for _ in range(int(wait / PROBE_EVERY_SECONDS))
        ]

        threads = [threading.Thread(target=watch, args=item) for item in checks.items()]
        for t in threads:
            t.start()
        for probe in probes:
            if "realtime request" in found.seconds or time.monotonic() - ended > wait:
                break
            probe.start()
            time.sleep(PROBE_EVERY_SECONDS)
        for t in threads + probes:
            if t.is_alive():
                t.join()
        found.seconds = {name: found.seconds.get(name) for name in checks}
        return found

    def alive(self) -> dict[str, bool]:
        """Whether each worker still runs as the process first started (no restart)."""
        return {
            name: self.stack.procs[name].pid == pid and self.stack.procs[name].poll() is None
            for name, pid in self.pids.items()
        }

    def _beat_fresh(self, queue: str) -> bool:
        top = self.direct.zrange(f"live:{queue}", -1, -1, withscores=True)
        age = time.time() - top[0][1] if top else float("inf")
        return age < 2 * self.settings.worker_heartbeat_seconds

    def _lines_done(self) -> int:
        with self.db.session() as s:
            return int(
                s.scalar(
                    text(
                        "SELECT count(*) FROM requests WHERE batch_id IS NOT NULL "
                        "AND status = 'completed'"
                    )
                )
                or 0
            )

    def _realtime_ok(self) -> bool:
        r = httpx.post(
            f"{self.stack.base_url}/chat/completions",
            json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
            timeout=5,
        )
        return r.status_code == 200

    def _flex_ran(self) -> Callable[[], bool]:
        """A check that a flex response, submitted once the API takes it, ran to its end."""
        submitted: list[str] = []

        def check() -> bool:
            if not submitted:
                r = httpx.post(
                    f"{self.stack.base_url}/responses",
                    json={
                        "model": MODEL,
                        "input": "flex",
                        "max_output_tokens": 16,
                        "background": True,
                        "service_tier": "flex",
                    },
                    timeout=5,
                )
                if r.status_code != 200:
                    return False
                submitted.append(str(r.json()["id"]))
            r = httpx.get(f"{self.stack.base_url}/responses/{submitted[0]}", timeout=5)
            # Its output limit is small: "incomplete" is a run to the end too.
            return r.status_code == 200 and r.json().get("status") in ("completed", "incomplete")

        return check


def _passes(check: Callable[[], bool]) -> bool:
    try:
        return check()
    except (httpx.HTTPError, redis.RedisError, OperationalError, KeyError, ValueError):
        return False
