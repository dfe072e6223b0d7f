"""Per-process state of a worker: the platform services and the engine host.

Set once by ``workers.main`` before the worker starts consuming; tasks read it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from inference_platform import liveness
from inference_platform.capacity import meter
from inference_platform.celery_app import queue_name
from inference_platform.engines.host import EngineHost
from inference_platform.events import CANCEL_CHANNEL
from inference_platform.housekeeping import Housekeeper
from inference_platform.jobs.attempts import Context
from inference_platform.jobs.embedding import live_attempt
from inference_platform.jobs.feed import Feed
from inference_platform.jobs.leases import LeaseKeeper
from inference_platform.platform import Platform
from inference_platform.tiers import BATCH, REALTIME
from workers.watchdog import Watchdog

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    platform: Platform
    model: str | None
    host: EngineHost | None
    queues: list[str]
    name: str
    # Durable work in flight per tier (the feed's capacity), e.g. {"batch": 32, "flex": 6}.
    capacities: dict[str, int] = field(default_factory=dict)
    # Generations the engine runs at once for background work (its batch size, or the
    # background share of a shared engine): claimed lines past it wait in its queue.
    engine_slots: int | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    feeds: dict[str, Feed] = field(default_factory=dict)
    leases: LeaseKeeper | None = None
    # When the heartbeat last ended a beat, announced or not (monotonic).
    beat_at: float = field(default_factory=time.monotonic)
    watchdog: Watchdog | None = None
    _housekeeper: Housekeeper | None = None

    def engine_host(self) -> EngineHost:
        if self.host is None:
            raise RuntimeError("this worker hosts no engine (control role)")
        return self.host

    def housekeeper(self) -> Housekeeper:
        """The control role's periodic duties."""
        if self._housekeeper is None:
            raise RuntimeError("only the control role keeps house")
        return self._housekeeper

    def start_background(self) -> None:
        """Heartbeat (so the API knows we serve our queues), the cancel listener, and one
        feed per tier for durable work (woken by hints, and once now for work left over);
        then the watchdog over them all."""
        # The heartbeat's own client: it never waits behind the feeds' connections.
        beats = liveness.beat_client(self.platform.settings.redis_url)
        threading.Thread(
            target=self._heartbeat, args=(beats,), name="heartbeat", daemon=True
        ).start()
        if self.host is None or self.model is None:
            self._housekeeper = Housekeeper(self.platform)
            self._watch(beats)
            return
        meter.METER.configure(self.engine_slots or 1)
        threading.Thread(target=self._listen_cancels, name="cancels", daemon=True).start()
        self.leases = LeaseKeeper(self.platform, self.host)
        ctx = Context(self.platform, self.host, self.leases)
        factor = self.platform.settings.realtime_queue_factor
        for tier, capacity in self.capacities.items():
            live = capacity * factor if tier == REALTIME else 0
            feed = Feed(
                ctx,
                tier=tier,
                model=self.model,
                capacity=capacity,
                live_capacity=live,
                # Only batch lines wait in the engine's queue past its slots; a response
                # waiting for a group would wait for nothing.
                slots=self.engine_slots if tier == BATCH else None,
            )
            self.feeds[tier] = feed
            feed.wake()
        self._watch(beats)

    def _watch(self, client: redis.Redis[bytes]) -> None:
        leases = self.leases
        self.watchdog = Watchdog(
            client,
            self.queues,
            beat_at=lambda: self.beat_at,
            leases_at=lambda: leases.turned_at if leases is not None else None,
            hand_back=self.stop,
            lease_seconds=self.platform.settings.lease_seconds,
            stopping=self.stopping,
        )
        self.watchdog.start()

    def wake(self, tier: str, model: str) -> None:
        """A hint arrived: durable work of ``tier`` may wait for ``model``."""
        feed = self.feeds.get(tier)
        if feed is None or model != self.model:
            log.warning("ignoring a hint for %s work of %s: not served here", tier, model)
            return
        feed.wake()

    def push_live(self, payload: dict[str, Any]) -> None:
        """Run a realtime request on the realtime feed."""
        feed = self.feeds.get(REALTIME)
        if feed is None:
            raise RuntimeError(f"this worker does not serve the realtime tier ({self.queues})")
        queue = queue_name(REALTIME, payload["model"])
        feed.push(live_attempt(payload, worker=self.name, queue=queue))

    def stop(self) -> None:
        """Stop claiming, hand running durable work back to the queue, stop renewing."""
        self.stopping.set()
        for feed in self.feeds.values():
            feed.stop()
        if self.leases is not None:
            self.leases.stop()

    def _heartbeat(self, client: redis.Redis[bytes]) -> None:
        interval = self.platform.settings.worker_heartbeat_seconds
        while not self.stopping.is_set():
            try:
                liveness.announce(client, self.queues, self.name)
                if self.model is not None:  # what the engine managed, for the capacity model
                    meter.publish(client, self.model, self.name, interval * 10)
            except Exception as exc:  # Redis restarts must not kill the worker
                log.warning("heartbeat failed: %s", exc)
            self.beat_at = time.monotonic()
            self.stopping.wait(interval)
        try:
            liveness.withdraw(client, self.queues, self.name)
        except Exception:
            pass

    def _listen_cancels(self) -> None:
        host = self.engine_host()
        while not self.stopping.is_set():
            try:
                pubsub = self.platform.redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(CANCEL_CHANNEL)
                while not self.stopping.is_set():
                    # Short waits, well inside the socket timeout, so a quiet channel is
                    # not mistaken for a broken connection.
                    message = pubsub.get_message(timeout=1.0)
                    data = message.get("data") if message else None
                    if isinstance(data, bytes):
                        host.abort_group(data.decode())
            except Exception as exc:
                log.warning("cancel listener reconnecting: %s", exc)
                self.stopping.wait(1.0)


_current: Runtime | None = None


def install(runtime: Runtime) -> None:
    global _current
    _current = runtime


def current() -> Runtime:
    if _current is None:
        raise RuntimeError(
            "worker runtime not installed; start workers with `inference-platform worker`"
        )
    return _current
