"""The worker's watchdog: notices a process that lives but has stopped serving, and brings it
back, or ends it so that its supervisor starts a fresh one.

A worker is several threads: Celery's consumer (hints and realtime requests come through it),
the heartbeat (the API refuses a model whose workers do not beat), the lease keeper (the
sweeper retries work whose lease lapsed) and the feeds. Any of them can stop while the
process stays alive, and a supervisor restarts only processes that exit. Once a second, from a
thread and a Redis client of its own (short socket timeouts), the watchdog checks:

* the broker link: when the watchdog's own client lost Redis and then reached it again, the
  consumer is told to start over at once (a cut that no reset announced leaves its
  connections dead, and it would find out only when a command on them timed out);
* the consumer: messages wait on this worker's queues and it has received none for
  ``CONSUMER_STALL_SECONDS``. It is told to start over (drop its broker connection from inside
  its loop, reconnect, consume again); if that brings nothing within ``RESTART_SECONDS``,
  the process gives up;
* the heartbeat: no beat, successful or not, ended for ``STUCK_SECONDS`` (a beat that meets a
  dead Redis fails within its socket timeout, so this is a stuck thread);
* the lease keeper: no renewal round ended for ``STUCK_SECONDS`` past its interval.

Giving up hands back what the feeds hold (at most ``GIVE_UP_SECONDS``) and exits with
``EXIT_STALLED``; what could not be handed back returns through its leases.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from celery.signals import task_received
from celery.worker import state as worker_state

from inference_platform import broker
from workers import consumer

log = logging.getLogger(__name__)

CHECK_SECONDS = 1.0
# Messages waiting this long with none received: the consumer is not consuming.
CONSUMER_STALL_SECONDS = 3.0
# After telling it to start over, how long the consumer has to receive one: its loop may be
# held by commands on a dead connection (the broker's socket timeout, 3 s, each) and then
# reconnect (every second while the broker is away).
RESTART_SECONDS = 15.0
# A heartbeat or a renewal round that has not ended in this long is stuck.
STUCK_SECONDS = 15.0
# Longest the hand-back may take before the process exits anyway.
GIVE_UP_SECONDS = 5.0
# Exit status of a worker that gave up (EX_TEMPFAIL: start it again).
EXIT_STALLED = 75


@dataclass
class Watchdog:
    client: redis.Redis[bytes]
    queues: list[str]
    # When the heartbeat last ended a beat, and the lease keeper a round (monotonic), or
    # None where the process has none.
    beat_at: Callable[[], float]
    leases_at: Callable[[], float | None]
    # Hands back the durable work the process holds (before it exits).
    hand_back: Callable[[], None]
    lease_seconds: float
    # Set when the worker stops: its threads end on purpose then.
    stopping: threading.Event = field(default_factory=threading.Event)
    received_at: float = field(default_factory=time.monotonic)
    # Since when messages have waited with none received (monotonic), and whether the
    # consumer was already told to start over for it.
    _stalled_since: float | None = None
    _restarted: bool = False
    # The watchdog's client lost Redis since its last successful look.
    _link_lost: bool = False

    def start(self) -> None:
        task_received.connect(self._received, weak=False)
        threading.Thread(target=self._run, name="watchdog", daemon=True).start()

    def _received(self, **_: Any) -> None:
        """The consumer took a message off one of our queues."""
        self.received_at = time.monotonic()

    def _run(self) -> None:
        while not self.stopping.wait(CHECK_SECONDS):
            try:
                problem = self.check(time.monotonic())
            except Exception:  # the watchdog itself must outlive anything it watches
                log.exception("watchdog check failed")
                continue
            if problem and not self.stopping.is_set():
                self.give_up(problem)
                return

    def check(self, now: float) -> str | None:
        """What is wrong that this process cannot mend itself, or None."""
        if now - self.beat_at() > STUCK_SECONDS:
            return f"the heartbeat has been stuck for {now - self.beat_at():.0f} s"
        leases = self.leases_at()
        if leases is not None and now - leases > self.lease_seconds / 3 + STUCK_SECONDS:
            return f"lease renewal has been stuck for {now - leases:.0f} s"
        return self._check_consumer(now)

    def _check_consumer(self, now: float) -> str | None:
        if consumer.current is None:  # still loading its engine
            return None
        if worker_state.reserved_requests:
            # Some message taken is still unfinished: its slot may be why no other is taken
            # (a long batch validation on the control role).
            self._stalled_since = None
            return None
        try:
            waiting = broker.waiting(self.client, self.queues)
        except redis.RedisError:  # Redis away: the consumer starts over once it is back
            self._stalled_since, self._link_lost = None, True
            return None
        if self._link_lost:
            self._link_lost = False
            consumer.current.start_over("the connection to the broker was lost")
            return None
        if not waiting or self.received_at > (self._stalled_since or now):
            self._stalled_since, self._restarted = None, False
            return None
        if self._stalled_since is None:
            self._stalled_since = now
            return None
        waited = now - self._stalled_since
        if self._restarted:
            if waited < RESTART_SECONDS:
                return None
            return f"{waiting} messages waited {waited:.0f} s after a restart, none received"
        if waited < CONSUMER_STALL_SECONDS:
            return None
        self._restarted = consumer.current.start_over(
            f"{waiting} messages waited {waited:.0f} s, none received"
        )
        self._stalled_since = now
        return None

    def give_up(self, problem: str) -> None:
        """Exit with EXIT_STALLED after handing back what we hold (or trying for a while)."""
        # First the deadline: if the process is stuck enough to block the hand-back, or the
        # log line below, it still exits.
        timer = threading.Timer(GIVE_UP_SECONDS, os._exit, args=(EXIT_STALLED,))
        timer.daemon = True
        timer.start()
        log.critical(
            "worker cannot recover (%s); exiting for its supervisor to restart it", problem
        )
        try:
            self.hand_back()
        finally:
            os._exit(EXIT_STALLED)
