"""The cache in front of key and limit lookups: one query per key however many callers."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from inference_platform.ttl_cache import TtlCache


def test_a_burst_of_callers_costs_one_load() -> None:
    calls: list[str] = []

    def load(key: str) -> str:
        calls.append(key)
        time.sleep(0.2)  # a slow query: every other caller arrives while it runs
        return key.upper()

    cache: TtlCache[str, str] = TtlCache(load, ttl=60)
    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda _: cache.get("k"), range(50)))
    assert results == ["K"] * 50
    assert calls == ["k"]


def test_an_expired_entry_is_reloaded_and_served_while_it_reloads() -> None:
    values = iter(["old", "new"])
    gate = threading.Event()

    def load(key: str) -> str:
        value = next(values)
        if value == "new":
            gate.wait(5)
        return value

    cache: TtlCache[str, str] = TtlCache(load, ttl=0.05)
    assert cache.get("k") == "old"
    time.sleep(0.1)
    refresher = threading.Thread(target=cache.get, args=("k",))
    refresher.start()
    time.sleep(0.05)
    assert cache.get("k") == "old"  # not blocked behind the slow reload
    gate.set()
    refresher.join(5)
    assert cache.get("k") == "new"


def test_a_failed_load_is_raised_and_tried_again() -> None:
    attempts = []

    def load(key: str) -> str:
        attempts.append(key)
        if len(attempts) == 1:
            raise ConnectionError("database away")
        return "ok"

    cache: TtlCache[str, str] = TtlCache(load, ttl=60)
    with pytest.raises(ConnectionError):
        cache.get("k")
    assert cache.get("k") == "ok"


def test_an_expired_entry_serves_on_while_its_reload_fails() -> None:
    answers: list[object] = ["valid", ConnectionError("database away"), "fresh"]

    def load(key: str) -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return str(answer)

    cache: TtlCache[str, str] = TtlCache(load, ttl=0.01)
    assert cache.get("k") == "valid"
    time.sleep(0.02)
    assert cache.get("k") == "valid"  # the reload failed: the old value serves on
    assert cache.get("k") == "fresh"  # the next caller tried again
