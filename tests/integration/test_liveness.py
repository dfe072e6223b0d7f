"""Liveness states against a real Redis: live, coming (starting, or Redis just flushed) and
gone; requests wait only for the coming."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from inference_platform import liveness
from tests.stack import _claim_redis_db, _release_redis_db

ADMIN = "redis://127.0.0.1:6379/0"
Q = "realtime.m"


@pytest.fixture
def client(services: object) -> Iterator[redis.Redis[bytes]]:
    index = _claim_redis_db(ADMIN)
    c = redis.Redis.from_url(f"redis://127.0.0.1:6379/{index}")
    c.flushdb()
    try:
        yield c
    finally:
        _release_redis_db(ADMIN, index)


def _later(fn: object, delay: float) -> None:
    timer = threading.Timer(delay, fn)  # type: ignore[arg-type]
    timer.daemon = True
    timer.start()


def test_gone_workers_fail_fast(client: redis.Redis[bytes]) -> None:
    liveness.announce(client, [Q], "w1")
    client.set(liveness.EPOCH_KEY, time.time() - 60)
    client.zadd(f"live:{Q}", {"w1": time.time() - 60})  # its heartbeats stopped
    cache = liveness.LivenessCache(client, max_age=3)
    start = time.monotonic()
    assert not cache.await_worker(Q, timeout=5)
    assert time.monotonic() - start < 0.5


def test_a_late_worker_is_waited_for_briefly(client: redis.Redis[bytes]) -> None:
    """A worker whose beat is overdue (a stalled host) is waited for, not refused at once;
    but only until its beat is two ``max_age`` old, as a killed one never beats again."""
    client.set(liveness.EPOCH_KEY, time.time() - 60)
    client.zadd(f"live:{Q}", {"w6": time.time() - 4})  # max_age 3: one second overdue
    cache = liveness.LivenessCache(client, max_age=3, cache_seconds=0)
    assert not cache.has_worker(Q)
    _later(lambda: liveness.announce(client, [Q], "w6"), 0.5)
    start = time.monotonic()
    assert cache.await_worker(Q, timeout=30)
    assert time.monotonic() - start < 1.5
    client.zadd(f"live:{Q}", {"w6": time.time() - 4})  # and then it never beats again
    start = time.monotonic()
    assert not cache.await_worker(Q, timeout=30)
    assert 1.5 < time.monotonic() - start < 3


def test_a_starting_worker_is_waited_for(client: redis.Redis[bytes]) -> None:
    client.set(liveness.EPOCH_KEY, time.time() - 60)
    liveness.starting(client, [Q], "w2")
    cache = liveness.LivenessCache(client, max_age=3)
    _later(lambda: liveness.announce(client, [Q], "w2"), 0.6)
    start = time.monotonic()
    assert cache.await_worker(Q, timeout=5)
    assert 0.5 < time.monotonic() - start < 3
    assert client.zcard(f"starting:{Q}") == 0  # the first heartbeat ends "starting"


def test_a_starting_worker_that_never_comes_times_out(client: redis.Redis[bytes]) -> None:
    client.set(liveness.EPOCH_KEY, time.time() - 60)
    liveness.starting(client, [Q], "w3")
    start = time.monotonic()
    assert not liveness.LivenessCache(client, max_age=3).await_worker(Q, timeout=0.5)
    assert time.monotonic() - start >= 0.5


def test_after_a_flush_requests_wait_for_the_re_announce(client: redis.Redis[bytes]) -> None:
    liveness.announce(client, [Q], "w4")
    cache = liveness.LivenessCache(client, max_age=3, cache_seconds=0)
    assert cache.has_worker(Q)
    client.flushdb()
    assert not cache.has_worker(Q)
    assert liveness.worker_alive(client, Q, "w4", 3)  # a stream in flight is not "lost"
    _later(lambda: liveness.announce(client, [Q], "w4"), 0.5)
    assert cache.await_worker(Q, timeout=5)


def test_missing_queues(client: redis.Redis[bytes]) -> None:
    liveness.announce(client, ["realtime.a", "batch.a"], "w5")
    assert liveness.missing_queues(client, ["realtime.a", "flex.a", "batch.a"], 3) == ["flex.a"]
