"""One reader per process for every request's event stream.

An API process may relay a thousand open streams at once. Each waiting in its own ``XREAD
BLOCK`` would hold a Redis connection per stream; instead one thread reads all the streams
that have a subscriber with a single ``XREAD`` and hands each subscriber its events. A new
subscription that finds the reader inside a read interrupts it by appending to the process's
own wake-up stream, which the reader always includes in its ``XREAD``; the subscriptions that
come before the reader has planned its next read join that read too, without a write of their
own (a burst of a thousand streams costs a few wake-ups, not a thousand).

A subscriber never waits for a read to time out: Redis checks the timeouts of blocked clients
only when its event loop wakes, which on an idle server is every 100 ms (``hz`` 10), so even a
50 ms block could hold a lone request for 100 ms.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from typing import Any

import redis

log = logging.getLogger(__name__)

# How long the reader blocks in one XREAD (a new subscriber interrupts it).
BLOCK_MS = 5000
# Entries read per stream and XREAD; a stream with more is read again at once.
COUNT = 512
# Pause between reads that brought entries, per open stream, and at most. One XREAD names
# every open stream, so its cost grows with them: under a few hundred streams, reading as soon
# as any token lands would spend the process on reads of one entry each. Waiting lets the
# tokens of many streams arrive together; a lone stream waits next to nothing.
READ_GAP_PER_STREAM_SECONDS = 0.00005
READ_GAP_SECONDS = 0.005


def _position(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class Subscription:
    """Raw entries of one request's stream after a position, as the hub reads them."""

    def __init__(self, hub: Hub, key: str, after: str) -> None:
        self.hub = hub
        self.key = key
        self.after = after
        self._entries: deque[tuple[str, Any]] = deque()
        self._error: BaseException | None = None
        self._cond = threading.Condition()

    def get(self, timeout: float) -> list[tuple[str, Any]]:
        """Entries that arrived (waits up to ``timeout`` seconds for the first)."""
        with self._cond:
            if not self._entries and self._error is None:
                self._cond.wait(timeout)
            if self._error is not None and not self._entries:
                error, self._error = self._error, None
                raise error
            entries = list(self._entries)
            self._entries.clear()
        return entries

    def close(self) -> None:
        self.hub.unsubscribe(self)

    def _deliver(self, entries: list[tuple[str, Any]], start: str) -> None:
        """Entries a read returned after position ``start``. A subscriber that joined after
        that read began wants earlier entries too: it skips this batch and the next read,
        which starts from its position, brings them all (no gap)."""
        if _position(self.after) < _position(start):
            return
        with self._cond:
            for entry_id, fields in entries:
                if _position(entry_id) > _position(self.after):
                    self._entries.append((entry_id, fields))
                    self.after = entry_id
            self._cond.notify_all()

    def _fail(self, error: BaseException) -> None:
        with self._cond:
            self._error = error
            self._cond.notify_all()


class Hub:
    def __init__(self, client: redis.Redis[bytes]) -> None:
        self._redis = client
        # The same connections, with XREAD's reply left as Redis sent it: redis-py's own
        # conversion of every entry into a dict cost more than the read itself.
        self._reader: redis.Redis[bytes] = redis.Redis(connection_pool=client.connection_pool)
        self._reader.set_response_callback("XREAD", _raw)  # type: ignore[no-untyped-call]
        # The reader's streams for its current read are fixed: a new subscriber must wake it.
        self._reading = False
        # A wake-up was sent that the reader has not acted on yet: later subscribers ride it.
        self._nudged = False
        # The last wake-up the reader saw. Reading after it, not after "$", also catches one
        # written between computing a read's streams and sending it.
        self._wake_after = "0"
        self._subs: dict[str, set[Subscription]] = {}
        self._lock = threading.Lock()
        self._wake_key = f"hub:{uuid.uuid4().hex}"
        self._thread: threading.Thread | None = None
        self._pause = threading.Event()  # never set: a sleep that gevent also turns cooperative

    def subscribe(self, key: str, after: str = "0") -> Subscription:
        sub = Subscription(self, key, after)
        with self._lock:
            self._subs.setdefault(key, set()).add(sub)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="event-hub", daemon=True)
                self._thread.start()
            nudge = self._reading and not self._nudged
            self._nudged = self._nudged or nudge
        if nudge:  # interrupt the reader's wait so it reads this stream too
            self._redis.xadd(self._wake_key, {"w": 1}, maxlen=16, approximate=True)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.key)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.key]

    def _streams(self) -> dict[Any, Any]:
        """The streams of the next read; from now on a new subscriber wakes that read."""
        with self._lock:
            streams: dict[Any, Any] = {
                key: min((s.after for s in subs), key=_position) for key, subs in self._subs.items()
            }
            self._reading = True
            # Every subscriber so far is in this read: the next one must wake it again.
            self._nudged = False
        streams[self._wake_key] = self._wake_after
        return streams

    def _read_done(self) -> None:
        """Subscribers from now on join the next read's plan without a wake-up."""
        with self._lock:
            self._reading = False

    def _run(self) -> None:
        while True:
            streams = self._streams()
            try:
                reply = self._reader.xread(streams, block=BLOCK_MS, count=COUNT)
            except Exception as exc:  # Redis away: every waiter hears of it, the reader goes on
                log.warning("event hub read failed: %s", exc)
                self._read_done()
                self._fail_all(exc)
                threading.Event().wait(1.0)
                continue
            self._read_done()
            flowing = False
            for raw_key, entries in _streams_of(reply):
                key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
                if key == self._wake_key:
                    if entries:
                        last = entries[-1][0]
                        self._wake_after = last.decode() if isinstance(last, bytes) else last
                    continue
                flowing = True
                decoded = [(e.decode() if isinstance(e, bytes) else e, f) for e, f in entries]
                with self._lock:
                    subs = list(self._subs.get(key, ()))
                for sub in subs:
                    sub._deliver(decoded, streams[key])
            if flowing:
                gap = (len(streams) - 1) * READ_GAP_PER_STREAM_SECONDS
                self._pause.wait(min(READ_GAP_SECONDS, gap))

    def _fail_all(self, error: BaseException) -> None:
        with self._lock:
            subs = [s for group in self._subs.values() for s in group]
        for sub in subs:
            sub._fail(error)


def _raw(response: Any, **_options: Any) -> Any:
    return response


def _streams_of(reply: Any) -> Any:
    """``(key, entries)`` of an XREAD reply as Redis sent it: a map in RESP3, pairs in RESP2.
    Each entry is ``(id, [field, value, ...])``."""
    if not reply:
        return ()
    return reply.items() if isinstance(reply, dict) else reply
