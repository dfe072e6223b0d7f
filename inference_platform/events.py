"""The event channel between workers and API hosts, on Redis.

Each request has a Redis Stream ``ev:<request id>``. The worker appends events as it generates;
any API host reads them with ``XREAD BLOCK`` from any position, so a late reader (a stream
that resumes, a blocking flex call that arrives after the work started) misses nothing.

Event payloads (JSON in the ``d`` field):

* ``{"t": "started", "attempt": n, "worker": name, "queue": q}`` — a worker took the request.
* ``{"t": "delta", "i": choice_index, "x": text}`` — generated text.
* ``{"t": "choice_end", "i": index, "finish_reason": "stop"|"length"}``.
* ``{"t": "end", "usage": {"prompt_tokens", "completion_tokens"}}`` — the request finished;
  nothing follows. For a client that does not stream, deltas are left out and ``end``
  carries ``"choices": [[text, finish_reason], ...]``.
* ``{"t": "error", "status": 400, "code": ..., "message": ..., "param": ...}`` — it failed;
  nothing follows.

Cancellation travels the other way on the pub/sub channel ``cancel`` (workers abort the
engine request) and as a key ``cancelled:<id>`` that a worker checks before it starts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import redis

TERMINAL = ("end", "error")
CANCEL_CHANNEL = "cancel"


def stream_key(request_id: str) -> str:
    return f"ev:{request_id}"


class EventChannel:
    def __init__(self, client: redis.Redis, ttl_seconds: int = 3600) -> None:
        self.redis = client
        self.ttl = ttl_seconds

    # -- writing (workers) --------------------------------------------------------------
    def publish(self, request_id: str, event: dict[str, Any]) -> None:
        key = stream_key(request_id)
        data = json.dumps(event, separators=(",", ":"))
        if event["t"] in TERMINAL:
            pipe = self.redis.pipeline(transaction=False)
            pipe.xadd(key, {"d": data})
            pipe.expire(key, self.ttl)
            pipe.execute()
        else:
            self.redis.xadd(key, {"d": data})

    def start(self, request_id: str, event: dict[str, Any]) -> bool:
        """Publish ``started`` unless the request was cancelled; True when it was.

        One round trip: this is on every realtime request's path.
        """
        key = stream_key(request_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.exists(f"cancelled:{request_id}")
        pipe.xadd(key, {"d": json.dumps(event, separators=(",", ":"))})
        pipe.expire(key, self.ttl)
        cancelled, _, _ = pipe.execute()
        return bool(cancelled)

    # -- reading (API) -------------------------------------------------------------------
    def read(
        self, request_id: str, after: str = "0", block_ms: int = 1000
    ) -> list[tuple[str, dict[str, Any]]]:
        """Events after stream position ``after``; waits up to ``block_ms`` for the first."""
        # XREAD BLOCK 0 would wait forever; 0 here means "don't wait".
        reply = self.redis.xread({stream_key(request_id): after}, block=block_ms or None, count=512)
        out: list[tuple[str, dict[str, Any]]] = []
        for _key, entries in reply or []:
            for entry_id, fields in entries:
                eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                raw = fields.get(b"d") or fields.get("d")
                out.append((eid, json.loads(raw)))
        return out

    def follow(
        self,
        request_id: str,
        *,
        first_timeout: float,
        total_timeout: float,
        after: str = "0",
        on_idle: Callable[[], None] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield events until a terminal one.

        Raises ``NoWorker`` when nothing at all arrives within ``first_timeout`` seconds and
        ``TimeoutError`` when the whole request outlives ``total_timeout``. ``on_idle`` runs
        whenever a wait of a few seconds brought nothing (it may raise to give up).
        """
        start = time.monotonic()
        seen_any = after != "0"
        while True:
            now = time.monotonic()
            limit = start + (total_timeout if seen_any else first_timeout)
            if now >= limit:
                raise NoWorker() if not seen_any else TimeoutError()
            wait_ms = max(1, int(min(limit - now, 5.0) * 1000))
            events = self.read(request_id, after, wait_ms)
            if not events and seen_any and on_idle is not None:
                on_idle()
            for eid, event in events:
                after = eid
                seen_any = True
                yield event
                if event["t"] in TERMINAL:
                    return

    def all_events(self, request_id: str) -> list[dict[str, Any]]:
        """Every event still stored for a request (non-blocking)."""
        events: list[dict[str, Any]] = []
        after = "0"
        while True:
            batch = self.read(request_id, after, block_ms=0)
            if not batch:
                return events
            after = batch[-1][0]
            events.extend(e for _id, e in batch)

    def exists(self, request_id: str) -> bool:
        return bool(self.redis.exists(stream_key(request_id)))

    # -- cancellation -------------------------------------------------------------------
    def cancel(self, request_id: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(f"cancelled:{request_id}", 1, ex=self.ttl)
        pipe.publish(CANCEL_CHANNEL, request_id)
        pipe.execute()


class NoWorker(Exception):
    """No worker picked the request up in time."""


def redis_client(url: str) -> redis.Redis:
    """A client tuned for the event channel: fail fast when Redis is down."""
    # Reads block for up to 5 s (XREAD BLOCK); the socket timeout must be longer than that.
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=3,
        socket_timeout=30,
        socket_keepalive=True,
        health_check_interval=30,
    )
