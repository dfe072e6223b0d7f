"""Which queues have a live worker: workers announce themselves, the API asks before enqueueing
so a model whose workers are all down gets 503 at once instead of a hang."""

from __future__ import annotations

import threading
import time

import redis


def _key(queue: str) -> str:
    return f"live:{queue}"


def announce(client: redis.Redis[bytes], queues: list[str], worker: str) -> None:
    now = time.time()
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.zadd(_key(queue), {worker: now})
    pipe.execute()


def withdraw(client: redis.Redis[bytes], queues: list[str], worker: str) -> None:
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.zrem(_key(queue), worker)
    pipe.execute()


def worker_alive(client: redis.Redis[bytes], queue: str, worker: str, max_age: float) -> bool:
    """Has ``worker`` announced itself on ``queue`` within ``max_age`` seconds?"""
    score = client.zscore(_key(queue), worker)
    return score is not None and float(score) >= time.time() - max_age


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
        count = self._client.zcount(_key(queue), time.time() - self._max_age, "+inf")
        alive = int(count) > 0
        with self._lock:
            self._seen[queue] = (now + self._cache_seconds, alive)
        return alive
