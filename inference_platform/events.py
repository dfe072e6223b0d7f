"""The event channel between workers and API hosts, on Redis, and its typed events.

Each request has a Redis Stream ``ev:<request id>``. The worker appends events as it generates;
any API host reads them with ``XREAD BLOCK`` from any position, so a late reader (a stream
that resumes, a blocking flex call that arrives after the work started) misses nothing.

The events, in the order a request produces them:

* ``Started`` — a worker took the request (one per attempt of a durable job).
* ``TextDelta`` — generated text of one choice. Durable jobs also carry running token counts
  (``output_tokens``, ``prompt_tokens``, ``cached_tokens``) so whoever stops or retries the
  job can tell what was already produced without a tokenizer. A request that asked for log
  probabilities gets them in ``logprobs``, one ``[token, logprob, [[token, logprob], ...]]``
  list per token.
* ``ChoiceEnd`` — one choice finished, with its ``finish_reason``.
* ``End`` — the request finished; nothing follows. For a client that does not stream, deltas
  are left out and ``End.choices`` carries every choice whole (an embedding request's vectors
  come in ``End.embeddings``, its only event after ``Started``). A stopped durable job's ``End``
  or ``Failed`` carries its final object in ``result``.
* ``Failed`` — it failed, with the HTTP status and OpenAI error fields; nothing follows.

Readers on the API side may also see ``Idle`` (no event for a while), which never travels
through Redis.

Cancellation travels the other way on the pub/sub channel ``cancel`` (workers abort the
engine request) and as a key ``cancelled:<id>`` that a worker checks before it starts.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from inference_platform import redis_pools
from inference_platform.engines.base import TokenLogprob
from inference_platform.hub import Hub, Subscription

CANCEL_CHANNEL = "cancel"


@dataclass(frozen=True)
class Usage:
    """Tokens of one request; ``cached_tokens`` are the part of ``prompt_tokens`` the engine's
    prefix cache served (0 where the engine cannot tell)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cached_tokens": self.cached_tokens,
        }


@dataclass(frozen=True)
class Started:
    attempt: int = 1
    worker: str = ""
    queue: str = ""
    ts: float = field(default_factory=time.time)


@dataclass(frozen=True)
class TextDelta:
    index: int
    text: str
    output_tokens: int | None = None
    prompt_tokens: int | None = None
    logprobs: tuple[TokenLogprob, ...] | None = None
    cached_tokens: int | None = None


@dataclass(frozen=True)
class ChoiceEnd:
    index: int
    finish_reason: str
    output_tokens: int | None = None
    prompt_tokens: int | None = None
    cached_tokens: int | None = None


@dataclass(frozen=True)
class End:
    usage: Usage = field(default_factory=Usage)
    # The job's status when it is not plain "completed" (incomplete, cancelled).
    status: str | None = None
    # Whole choices as (text, finish_reason), for clients that do not stream.
    choices: tuple[tuple[str, str | None], ...] | None = None
    # And their tokens' log probabilities, when the request asked for them.
    logprobs: tuple[tuple[TokenLogprob, ...], ...] | None = None
    # The final object of a stopped job, so readers need not wait for the row.
    result: dict[str, Any] | None = None
    # An embedding request's vectors, one per input in order, as OpenAI's base64 strings.
    embeddings: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Failed:
    status: int
    code: str
    message: str
    param: str | None = None
    result: dict[str, Any] | None = None
    # Seconds the client should wait before retrying (overload), sent as ``Retry-After``.
    retry_after: int | None = None


@dataclass(frozen=True)
class Idle:
    """No event for a while (API side only: streams send a keep-alive)."""


Event = Started | TextDelta | ChoiceEnd | End | Failed | Idle
Terminal = End | Failed

_TYPES: dict[str, type[Any]] = {
    "started": Started,
    "delta": TextDelta,
    "choice_end": ChoiceEnd,
    "end": End,
    "failed": Failed,
}
_NAMES = {cls: name for name, cls in _TYPES.items()}


def is_terminal(event: Event) -> bool:
    return isinstance(event, End | Failed)


def encode(event: Event) -> str:
    """Compact JSON with a ``type`` and the fields that are set."""
    data = {k: v for k, v in asdict(event).items() if v is not None}
    if isinstance(event, End):
        data["usage"] = {
            "prompt_tokens": event.usage.prompt_tokens,
            "completion_tokens": event.usage.completion_tokens,
        }
        if event.usage.cached_tokens:
            data["usage"]["cached_tokens"] = event.usage.cached_tokens
    return json.dumps({"type": _NAMES[type(event)], **data}, separators=(",", ":"))


def decode(raw: str | bytes) -> Event:
    data = json.loads(raw)
    cls = _TYPES[data.pop("type")]
    if cls is End:
        data["usage"] = Usage(**data.get("usage") or {})
        if data.get("choices") is not None:
            data["choices"] = tuple((text, finish) for text, finish in data["choices"])
        if data.get("embeddings") is not None:
            data["embeddings"] = tuple(data["embeddings"])
        if data.get("logprobs") is not None:
            data["logprobs"] = tuple(_token_logprobs(c) for c in data["logprobs"])
    elif cls is TextDelta and data.get("logprobs") is not None:
        data["logprobs"] = _token_logprobs(data["logprobs"])
    event: Event = cls(**data)
    return event


def _token_logprobs(raw: list[Any]) -> tuple[TokenLogprob, ...]:
    return tuple(
        TokenLogprob(token, logprob, tuple((t, lp) for t, lp in top)) for token, logprob, top in raw
    )


def stream_key(request_id: str) -> str:
    return f"ev:{request_id}"


class EventChannel:
    def __init__(self, client: redis.Redis[bytes], ttl_seconds: int = 3600) -> None:
        self.redis = client
        self.ttl = ttl_seconds
        self._hub: Hub | None = None
        self._hub_lock = threading.Lock()

    @property
    def hub(self) -> Hub:
        """The process's one reader of every followed stream (started on first use)."""
        with self._hub_lock:
            if self._hub is None:
                self._hub = Hub(self.redis)
            return self._hub

    def subscribe(self, request_id: str, after: str = "0") -> EventSubscription:
        """Follow one request's events without a Redis connection of its own."""
        return EventSubscription(self.hub.subscribe(stream_key(request_id), after))

    # -- writing (workers) --------------------------------------------------------------
    def publish(self, request_id: str, event: Event) -> None:
        key = stream_key(request_id)
        data = encode(event)
        if is_terminal(event):
            pipe = self.redis.pipeline(transaction=False)
            pipe.xadd(key, {"d": data})
            pipe.expire(key, self.ttl)
            pipe.execute()
        else:
            self.redis.xadd(key, {"d": data})

    def publish_many(self, events: list[tuple[str, Event]]) -> None:
        """Publish events of one or more requests in one round trip, in order."""
        if not events:
            return
        pipe = self.redis.pipeline(transaction=False)
        for request_id, event in events:
            key = stream_key(request_id)
            pipe.xadd(key, {"d": encode(event)})
            if is_terminal(event):
                pipe.expire(key, self.ttl)
        pipe.execute()

    def start(self, request_id: str, event: Started) -> bool:
        """Publish ``started`` unless the request was cancelled; True when it was."""
        return self.start_many([(request_id, event)])[0]

    def start_many(self, started: list[tuple[str, Started]]) -> list[bool]:
        """``start`` for several requests in one round trip (this is on every realtime
        request's path); per request, True when it was cancelled."""
        pipe = self.redis.pipeline(transaction=False)
        for request_id, event in started:
            key = stream_key(request_id)
            pipe.exists(f"cancelled:{request_id}")
            pipe.xadd(key, {"d": encode(event)})
            pipe.expire(key, self.ttl)
        replies = pipe.execute()
        return [bool(cancelled) for cancelled in replies[::3]]

    # -- reading (API) -------------------------------------------------------------------
    def read(
        self, request_id: str, after: str = "0", block_ms: int = 1000
    ) -> list[tuple[str, Event]]:
        """Events after stream position ``after``; waits up to ``block_ms`` for the first."""
        # XREAD BLOCK 0 would wait forever; 0 here means "don't wait".
        reply = self.redis.xread({stream_key(request_id): after}, block=block_ms or None, count=512)
        return [(eid, event) for eid, event in _entries(reply or [])]

    def follow(
        self,
        request_id: str,
        *,
        first_timeout: float,
        total_timeout: float,
        after: str = "0",
        on_idle: Callable[[], None] | None = None,
    ) -> Iterator[Event]:
        """Yield events until a terminal one.

        Raises ``NoWorker`` when nothing at all arrives within ``first_timeout`` seconds and
        ``TimeoutError`` when the whole request outlives ``total_timeout``. ``on_idle`` runs
        whenever a wait of a few seconds brought nothing (it may raise to give up).
        """
        start = time.monotonic()
        seen_any = after != "0"
        with self.subscribe(request_id, after) as sub:
            while True:
                now = time.monotonic()
                limit = start + (total_timeout if seen_any else first_timeout)
                if now >= limit:
                    raise NoWorker() if not seen_any else TimeoutError()
                events = sub.get(min(limit - now, 5.0))
                if not events and seen_any and on_idle is not None:
                    on_idle()
                for _eid, event in events:
                    seen_any = True
                    yield event
                    if is_terminal(event):
                        return

    def all_events(self, request_id: str) -> list[Event]:
        """Every event still stored for a request (non-blocking)."""
        events: list[Event] = []
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


def _entries(reply: Any) -> Iterator[tuple[str, Event]]:
    """Decoded ``(entry id, event)`` pairs of an XREAD / XRANGE reply."""
    for _key, entries in reply:
        yield from decode_entries(entries)


def decode_entries(entries: Any) -> Iterator[tuple[str, Event]]:
    """Events of stream entries, whose fields come as a dict (redis-py's XREAD, XRANGE) or
    as Redis sent them, ``[field, value, ...]`` (the hub's reads)."""
    for entry_id, fields in entries:
        eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        found: dict[Any, Any] = (
            fields
            if isinstance(fields, dict)
            else dict(zip(fields[::2], fields[1::2], strict=True))
        )
        yield eid, decode(found.get(b"d") or found["d"])


class EventSubscription:
    """Decoded events of one request, as the process's hub reads them."""

    def __init__(self, sub: Subscription) -> None:
        self._sub = sub

    def get(self, timeout: float) -> list[tuple[str, Event]]:
        return list(decode_entries(self._sub.get(timeout)))

    def close(self) -> None:
        self._sub.close()

    def __enter__(self) -> EventSubscription:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class NoWorker(Exception):
    """No worker picked the request up in time."""


def redis_client(url: str, max_connections: int = 256) -> redis.Redis[bytes]:
    """A client tuned for the event channel: fail fast when Redis is down, and wait for a
    free connection rather than fail when the pool is busy."""
    # Reads block for up to 5 s (XREAD BLOCK); the socket timeout must be longer than that,
    # and short enough that a connection cut silently (no reset reaches us) holds a thread,
    # a worker's feed included, for seconds rather than half a minute.
    pool = redis_pools.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=10,
        socket_connect_timeout=3,
        socket_timeout=8,
        socket_keepalive=True,
        health_check_interval=30,
    )
    return redis.Redis(connection_pool=pool)
