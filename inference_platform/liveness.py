"""Which queues have a live worker: workers announce themselves, the API asks before enqueueing
so a model whose workers are all down gets 503 at once instead of a hang.

Three states of a queue, so the API waits only where waiting helps:

* live: a worker announced itself within the last few heartbeats;
* coming: a worker is starting (loading its engine), or is late (its last beat is overdue, but
  by less than another ``max_age``: a process or host that stalled for a few seconds, with
  every thread, heartbeat included, held up), or Redis lost what it knew (flushed or
  restarted: ``live:epoch`` is missing or young) and workers have not re-announced yet; a
  request waits up to ``INFERENCE_WORKER_WAIT_SECONDS`` for one (for a late one, only until
  its beat is two ``max_age`` old);
* gone: neither; a request fails at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import redis

# Set (if missing) by every heartbeat and liveness check: how long Redis has known workers.
EPOCH_KEY = "live:epoch"
# A worker that said it is starting counts as coming this long (vLLM may load for minutes).
STARTING_SECONDS = 600.0


def beat_client(url: str) -> redis.Redis[bytes]:
    """A client of its own for a worker's heartbeat and watchdog: short socket timeouts and
    no shared pool, so neither can wait behind other threads' connections or a silent
    Redis for longer than a beat."""
    return redis.Redis.from_url(
        url, socket_timeout=2, socket_connect_timeout=1, socket_keepalive=True, max_connections=4
    )


def _key(queue: str) -> str:
    return f"live:{queue}"


def _starting_key(queue: str) -> str:
    return f"starting:{queue}"


def announce(client: redis.Redis[bytes], queues: list[str], worker: str) -> None:
    now = time.time()
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.zadd(_key(queue), {worker: now})
        pipe.zrem(_starting_key(queue), worker)
    # After a FLUSHALL the first beat starts a new epoch (see ``LivenessCache``).
    pipe.set(EPOCH_KEY, now, nx=True)
    pipe.execute()


def starting(client: redis.Redis[bytes], queues: list[str], worker: str) -> None:
    """Say that ``worker`` is loading its engine for ``queues`` (first heartbeat to follow)."""
    now = time.time()
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.zadd(_starting_key(queue), {worker: now})
    pipe.execute()


def withdraw(client: redis.Redis[bytes], queues: list[str], worker: str) -> None:
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.zrem(_key(queue), worker)
        pipe.zrem(_starting_key(queue), worker)
    pipe.execute()


def epoch_young(client: redis.Redis[bytes], max_age: float) -> bool:
    """Did Redis lose its liveness data less than ``max_age`` ago (flushed, restarted)?"""
    now = time.time()
    raw = client.get(EPOCH_KEY)
    if raw is None:
        client.set(EPOCH_KEY, now, nx=True)
        return True
    return float(raw) > now - max_age


def worker_alive(client: redis.Redis[bytes], queue: str, worker: str, max_age: float) -> bool:
    """Has ``worker`` announced itself on ``queue`` within ``max_age`` seconds? (Yes while
    Redis has just lost what it knew: the worker re-announces within a heartbeat.)"""
    score = client.zscore(_key(queue), worker)
    if score is None:
        return epoch_young(client, max_age)
    return float(score) >= time.time() - max_age


def live_count(client: redis.Redis[bytes], queue: str, max_age: float) -> int:
    return int(client.zcount(_key(queue), time.time() - max_age, "+inf"))


def live_workers(client: redis.Redis[bytes], queue: str, max_age: float) -> dict[str, float]:
    """``{worker: seconds since its last heartbeat}`` of the live workers on ``queue``."""
    now = time.time()
    found = client.zrangebyscore(_key(queue), now - max_age, "+inf", withscores=True)
    return {name.decode(): now - float(at) for name, at in found}


def missing_queues(client: redis.Redis[bytes], queues: Iterable[str], max_age: float) -> list[str]:
    """Those of ``queues`` without a live worker (one round trip)."""
    queues = list(queues)
    now = time.time()
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.zcount(_key(queue), now - max_age, "+inf")
    return [q for q, n in zip(queues, pipe.execute(), strict=True) if not int(n)]


class LivenessCache:
    """Answers "is anyone consuming this queue?" with a one-second cache per queue."""

    def __init__(
        self, client: redis.Redis[bytes], max_age: float, cache_seconds: float = 1.0
    ) -> None:
        self._client = client
        self._max_age = max_age
        self._cache_seconds = cache_seconds
        self._seen: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def has_worker(self, queue: str) -> bool:
        now = time.monotonic()
        with self._lock:
            hit = self._seen.get(queue)
        if hit and hit[0] > now:
            return hit[1]
        alive = live_count(self._client, queue, self._max_age) > 0
        with self._lock:
            self._seen[queue] = (now + self._cache_seconds, alive)
        return alive

    def coming(self, queue: str) -> bool:
        """Is a worker for ``queue`` starting or late, or may one re-announce after a Redis
        flush?"""
        now = time.time()
        pipe = self._client.pipeline(transaction=False)
        pipe.zcount(_starting_key(queue), now - STARTING_SECONDS, "+inf")
        # A worker that stopped cleanly withdrew its entry; one killed is late for one more
        # ``max_age`` at most, and then gone.
        pipe.zcount(_key(queue), now - 2 * self._max_age, "+inf")
        starting, late = pipe.execute()
        if int(starting) > 0 or int(late) > 0:
            return True
        return epoch_young(self._client, self._max_age)

    def await_worker(self, queue: str, timeout: float, poll: float = 0.2) -> bool:
        """True once ``queue`` has a live worker: at once when it has one, after up to
        ``timeout`` while one is coming, False at once when its workers are gone."""
        if self.has_worker(queue):
            return True
        if not self.coming(queue):
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(poll)
            if live_count(self._client, queue, self._max_age) > 0:
                with self._lock:
                    self._seen.pop(queue, None)
                return True
            if not self.coming(queue):
                return False
        return False
