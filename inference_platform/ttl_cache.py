"""A small in-process cache of database reads on the request path (API keys, tenant limits).

Entries live ``ttl`` seconds. One caller loads a missing or expired entry while the others
wait for it (or, for an expired one, keep using the old value meanwhile): a burst of hundreds
of requests with the same key costs one query, not hundreds. When reloading an expired entry
fails (the database is away), the old value serves on and the next caller tries again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

MAX_ENTRIES = 10_000


class TtlCache(Generic[K, V]):
    def __init__(self, load: Callable[[K], V], ttl: float) -> None:
        self._load = load
        self._ttl = ttl
        self._entries: dict[K, tuple[float, V]] = {}
        self._loading: dict[K, threading.Event] = {}
        self._lock = threading.Lock()
        # Bumped by ``clear``: a load that began before it must not store what it read.
        self._generation = 0

    def get(self, key: K) -> V:
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
            pending = self._loading.get(key)
            if pending is None:
                self._loading[key] = threading.Event()
            elif hit is not None:
                return hit[1]  # another caller refreshes it
        if pending is not None:
            pending.wait(self._ttl)
            with self._lock:
                hit = self._entries.get(key)
            if hit is not None:
                return hit[1]
            return self._load(key)  # its load failed: try ours, and raise its error
        return self._refresh(key, hit)

    def clear(self) -> None:
        """Forget every entry; loads in flight keep their answer to themselves."""
        with self._lock:
            self._entries.clear()
            self._generation += 1

    def _refresh(self, key: K, stale: tuple[float, V] | None) -> V:
        generation = self._generation
        try:
            try:
                value = self._load(key)
            except Exception:
                if stale is None:
                    raise
                return stale[1]
            with self._lock:
                if generation != self._generation:
                    return value
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
                self._entries[key] = (time.monotonic() + self._ttl, value)
            return value
        finally:
            with self._lock:
                self._loading.pop(key).set()
