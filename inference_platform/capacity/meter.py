"""What a worker measures of its engine, for the capacity model.

The feed reports every piece of work as it starts and ends (through ``metrics.worker``); the
meter turns that into, over a recent window:

* throughput while busy: work units (``model.work_units``) per second during which the
  engine had anything in flight, decayed over busy time (an idle hour keeps the last figure);
* how full the engine was while busy (in-flight pieces over its slots, at most 1): a figure
  measured with the engine mostly full is its capacity, one measured with it mostly empty is
  only a lower bound;
* the busy fraction: the share of wall time with anything in flight.

The heartbeat publishes it in one Redis hash per model (``publish``); the control role reads
every live worker's entry (``read``).
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis

from inference_platform.capacity.model import work_units

# Decay of the throughput figures, in busy seconds, and of the busy fraction, in wall seconds.
RATE_SECONDS = 60.0
BUSY_SECONDS = 300.0
KEY = "capacity:workers:{model}"


@dataclass(frozen=True)
class Reading:
    """One worker's figures as published."""

    worker: str
    at: float
    # Work units per busy second (None until it has been busy for a few seconds).
    rate: float | None
    # Mean share of its slots in use while busy (0-1).
    fullness: float
    busy_fraction: float
    # Generations its engine runs at once for queued work.
    slots: int = 1

    def as_json(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"))


class Meter:
    """One per worker process; thread-safe (the feeds report from their own threads)."""

    def __init__(self, slots: int = 1) -> None:
        self.slots = max(1, slots)
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self._in_flight = 0
        self._work = 0.0  # decayed over busy time
        self._busy = 0.0
        self._full = 0.0
        self._busy_wall = 0.0  # decayed over wall time
        self._wall = 0.0
        self._ended = 0.0  # pieces ended, decayed over busy time
        # From idle to busy, nothing ends until the first piece has run its length: that
        # stretch is not counted, or a deep queue would look slow for minutes.
        self._filling = False

    def configure(self, slots: int) -> None:
        with self._lock:
            self.slots = max(1, slots)

    def started(self) -> None:
        with self._lock:
            self._advance()
            if self._in_flight == 0:
                self._filling = True
            self._in_flight += 1

    def ended(self, prompt_tokens: int, output_tokens: int) -> None:
        with self._lock:
            self._advance()
            self._in_flight = max(0, self._in_flight - 1)
            if self._filling:  # its tokens belong to the stretch not counted
                self._filling = False
                return
            self._work += work_units(prompt_tokens, output_tokens)
            self._ended += 1

    def reading(self, worker: str) -> Reading:
        with self._lock:
            self._advance()
            # A figure once a few pieces have ended over a couple of seconds: before, the
            # tokens of pieces still running (counted as they end) would be missing from it.
            known = self._busy >= 2.0 and self._ended >= 3 and self._work > 0
            rate = self._work / self._busy if known else None
            fullness = self._full / self._busy if self._busy > 0 else 0.0
            busy = self._busy_wall / self._wall if self._wall > 0 else 0.0
            slots = self.slots
        return Reading(worker, time.time(), rate, round(fullness, 4), round(busy, 4), slots)

    def _advance(self) -> None:
        """Account the time since the last event (caller holds the lock)."""
        now = time.monotonic()
        dt, self._last = now - self._last, now
        if dt <= 0:
            return
        keep_wall = math.exp(-dt / BUSY_SECONDS)
        self._wall = self._wall * keep_wall + dt
        self._busy_wall *= keep_wall
        if self._in_flight <= 0:
            return
        self._busy_wall += dt
        if self._filling:
            return
        keep = math.exp(-dt / RATE_SECONDS)
        self._work *= keep
        self._ended *= keep
        self._busy = self._busy * keep + dt
        self._full = self._full * keep + dt * min(1.0, self._in_flight / self.slots)


def capacity_of(reading: Reading, prior: float) -> float:
    """A worker's throughput for the capacity model: what it measured when it ran mostly
    full (its capacity), else the better of that and ``prior`` (running mostly empty, it
    measured only a lower bound: a lone stream is slower than a full batch)."""
    if reading.rate is None or reading.rate <= 0:
        return prior
    if reading.fullness >= 0.5:
        return reading.rate
    return max(reading.rate, prior)


# The process's meter: a worker hosts one engine.
METER = Meter()


def publish(client: redis.Redis[bytes], model: str, worker: str, ttl: float) -> None:
    """Put this worker's reading in its model's hash (the heartbeat calls it)."""
    key = KEY.format(model=model)
    pipe = client.pipeline(transaction=False)
    pipe.hset(key, worker, METER.reading(worker).as_json())
    pipe.expire(key, max(1, int(ttl)))
    pipe.execute()


def read(client: redis.Redis[bytes], model: str, max_age: float) -> list[Reading]:
    """Readings of the model's workers heard from within ``max_age`` seconds."""
    key = KEY.format(model=model)
    raw: dict[Any, Any] = client.hgetall(key)
    now, out, gone = time.time(), [], []
    for name, value in raw.items():
        try:
            reading = Reading(**json.loads(value))
        except (TypeError, ValueError):
            gone.append(name)
            continue
        if reading.at >= now - max_age:
            out.append(reading)
        elif reading.at < now - 10 * max_age:
            gone.append(name)  # a worker that stopped long ago
    if gone:
        client.hdel(key, *gone)
    return out
