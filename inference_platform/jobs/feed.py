"""The feed: the one loop that runs a worker's generations, for every tier.

One feed per worker process and tier. For durable work (``flex``, ``batch``, and background
responses in the ``realtime`` tier) a hint on the tier's queue wakes it; it then keeps up to
``capacity`` pieces in flight, claiming more (earliest deadline first) as pieces finish, so
the engine never idles behind one long line. Realtime requests are pushed into the realtime
feed by their task, which returns at once: a worker holds as many of them in flight as its
engine takes, with no thread, Redis connection or Celery slot each. The feed runs on its own
thread and publishes the events of all its requests in one Redis round trip per turn.

Results of batch lines are recorded in groups (one transaction per ``FLUSH_LINES`` lines or
``FLUSH_SECONDS``, and at once when nothing else runs), jobs at once; both through the same
exactly-once conditional update.

On a CPU host every millisecond the feed spends comes out of the engine's own steps, so a
batch feed that holds lines past the engine's slots (they wait in the engine's queue) claims
in groups of half that margin instead of one claim per finished line.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, cast

from inference_platform import usage, usage_spool
from inference_platform.batches import lifecycle, rows
from inference_platform.engines.base import Delta, Embedded
from inference_platform.events import Event, Failed, TextDelta
from inference_platform.jobs import store
from inference_platform.jobs.attempts import Attempt, Context, JobAttempt, LiveAttempt
from inference_platform.jobs.embedding import EmbeddingAttempt, attempt_of
from inference_platform.jobs.pacing import Pacer
from inference_platform.jobs.store import Finished
from inference_platform.metrics import worker as worker_metrics

log = logging.getLogger(__name__)

FLUSH_LINES = 256
FLUSH_SECONDS = 0.5
# Look for more work at least this often while some runs (hints can be lost).
CLAIM_EVERY_SECONDS = 1.0
# After a database error, wait this long before claiming again.
RETRY_SECONDS = 1.0
# Realtime request ids a feed remembers to drop a redelivered task (far more than it can
# take in the time a broker takes to give a message back).
LIVE_SEEN = 65536

_DONE = object()
_NEW = object()

OVERLOADED = Failed(
    503,
    "engine_overloaded",
    "The model's workers are at capacity; retry shortly.",
    retry_after=1,
)


@dataclass
class _Recorder:
    """Buffers finished lines and writes them in groups."""

    ctx: Context
    pending: list[Finished] = field(default_factory=list)
    last: float = field(default_factory=time.monotonic)
    # Batches with lines recorded here and not yet seen without unfinished lines.
    batches: set[str] = field(default_factory=set)
    # Their result files known to exist (see ``store.record``).
    files: set[tuple[str, bool]] = field(default_factory=set)
    # After a failed write, no other try before this (monotonic), forced or not.
    retry_at: float = 0.0

    def add(self, done: Finished) -> None:
        self.pending.append(done)
        self.flush(force=False)

    def flush(self, *, force: bool = True, last: bool = False) -> None:
        """Write what is pending if due (``force``: now); ``last``: the feed stops, try even
        while Postgres was just found away."""
        now = time.monotonic()
        due = len(self.pending) >= FLUSH_LINES or now - self.last >= FLUSH_SECONDS
        if not self.pending or not (force or due) or (now < self.retry_at and not last):
            return
        self.last = now
        files = set(self.files)
        batches = self.batches | {d.work.batch_id for d in self.pending if d.work.batch_id}
        try:
            with self.ctx.platform.db.session() as s:
                store.record(s, self.pending, files)
                # In the same transaction: the writers of a batch's results take turns
                # (``store.record`` locks it), so the last of them sees every line ended.
                idle = {b for b in batches if not rows.has_unfinished(s, b)}
        except Exception as exc:  # Postgres away: keep them (leases held) and try again
            log.warning("recording %d lines failed: %s", len(self.pending), exc)
            # At the claims' pace: the idle loop would otherwise force a write every turn.
            self.retry_at = time.monotonic() + RETRY_SECONDS
            return
        done, self.pending = self.pending, []
        for item in done:
            self.ctx.leases.release(item.work.id)
        self.batches = batches - idle
        self.files = {f for f in files if f[0] not in idle}
        for batch_id in idle:  # after the commit, so finalisation reads every result
            lifecycle.request_finalize(self.ctx.platform, batch_id)


Item = tuple[Attempt, int, Delta | Embedded | BaseException | object]


class Feed:
    def __init__(
        self,
        ctx: Context,
        *,
        tier: str,
        model: str,
        capacity: int,
        live_capacity: int = 0,
        slots: int | None = None,
    ) -> None:
        self.ctx = ctx
        self.tier = tier
        self.model = model
        self.capacity = max(1, capacity)
        # Pieces the engine runs at once for this feed; claimed ones past it wait in the
        # engine's queue. While the engine's slots are full and enough waits behind them,
        # the feed claims only once ``refill`` pieces have room (half the margin, at most half
        # the slots: however deep the feed, a more urgent line is claimed, at its deadline's
        # priority, after half an engine batch of lines has ended).
        self.slots = min(self.capacity, max(1, slots or self.capacity))
        self.refill = max(1, min((self.slots + 1) // 2, (self.capacity - self.slots + 1) // 2))
        # Realtime requests held at once (running or waiting in the engine); past it, new
        # ones are refused at once with 503 and Retry-After instead of waiting unboundedly.
        self.live_capacity = live_capacity
        self._inbox: queue.Queue[Item] = queue.Queue()
        self._inflight: dict[str, Attempt] = {}
        # Claimed (durable) pieces in flight: what ``capacity`` limits.
        self._durable = 0
        self._recorder = _Recorder(ctx)
        # Usage of finished realtime requests, recorded in one insert per turn.
        self._bills: list[dict[str, Any]] = []
        self._pacer = Pacer(ctx.platform.settings.stream_events_per_second)
        # Ids of the realtime requests taken lately, oldest first (see ``_redelivered``).
        self._live_seen: dict[str, None] = {}
        # Events of this turn that passed the pacer, published together at its end.
        self._unsent: list[tuple[str, Event]] = []
        self._journal = usage_spool.Journal(ctx.platform.settings.var_path, tier)
        self._billed = time.monotonic()
        self._lock = threading.Lock()
        self._wakes = 0
        self._running = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def in_flight(self) -> int:
        """Pieces of work generating now (the worker's metrics read it)."""
        return len(self._inflight)

    # -- control (any thread) -------------------------------------------------------------
    def wake(self) -> None:
        """Work may be waiting: start serving, or tell the running loop to look again."""
        with self._lock:
            self._wakes += 1
            self._ensure_running()

    def push(self, attempt: LiveAttempt) -> None:
        """Run a realtime request (its task returns at once)."""
        self._inbox.put((attempt, -1, _NEW))
        with self._lock:
            self._ensure_running()

    def _ensure_running(self) -> None:
        """Start the loop's thread unless it runs (caller holds the lock)."""
        if self._running or self._stopping.is_set():
            return
        self._running = True
        self._thread = threading.Thread(target=self._serve, name=f"feed-{self.tier}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Claim nothing more, hand back what runs, and wait for the loop to end."""
        self._stopping.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # -- the loop (its own thread) --------------------------------------------------------
    def _serve(self) -> None:
        try:
            self._loop()
        except Exception:
            log.exception("the %s feed of %s failed; its work goes back", self.tier, self.model)
            self._hand_back_all()
            with self._lock:
                self._running = False

    def _loop(self) -> None:
        seen, last_claim, finished = -1, 0.0, False
        while True:
            if self._stopping.is_set():
                self._hand_back_all()
                self._recorder.flush(last=True)
                self._record_bills()
                with self._lock:
                    self._running = False
                return
            with self._lock:
                wakes = self._wakes
            room = self.capacity - self._durable
            stale = time.monotonic() - last_claim >= CLAIM_EVERY_SECONDS
            if self._wants(room) and (wakes != seen or finished or stale):
                seen, last_claim = wakes, time.monotonic()
                self._claim(room)
            if not self._inflight and self._inbox.empty():
                if self._recorder.pending or self._bills:
                    # Lines at once: nothing runs, and their batch may be complete. Bills
                    # at their usual pace: a request arriving meanwhile must not wait
                    # behind the insert.
                    self._recorder.flush()
                    self._record_bills(force=False)
                    self._pump()
                    continue
                with self._lock:
                    idle = self._wakes == seen and self._inbox.empty()
                    if idle and not self._recorder.pending and not self._bills:
                        self._running = False  # decided under the lock: no wake is lost
                        return
                continue
            finished = self._pump()
            self._recorder.flush(force=False)
            self._record_bills(force=False)

    def _wants(self, room: int) -> bool:
        """Whether to claim now, given ``room`` for more durable pieces."""
        return room > 0 and (self._durable < self.slots or room >= self.refill)

    def _claim(self, room: int) -> None:
        try:
            claimed = store.claim(self.ctx.platform, tier=self.tier, model=self.model, limit=room)
        except Exception as exc:  # Postgres away: the hint stays valid, try again soon
            log.warning("claiming %s work of %s failed: %s", self.tier, self.model, exc)
            self._stopping.wait(RETRY_SECONDS)
            return
        for work in claimed:
            self._start(attempt_of(work))

    def _start(self, attempt: Attempt) -> None:
        ctx, work = self.ctx, attempt.work
        live = isinstance(attempt, LiveAttempt)
        if live and len(self._inflight) - self._durable >= self.live_capacity:
            self._publish([(work.id, OVERLOADED)])
            return
        if not live:
            ctx.leases.hold(work.id, work.attempt)
        try:
            started = attempt.start(ctx)
        except Exception:  # e.g. Redis away: the client's wait ends in worker_lost/timeout
            log.exception("could not start %s", work.id)
            started = False
        if not started:
            ctx.leases.release(work.id)
            return
        self._inflight[work.id] = attempt
        self._durable += 0 if live else 1
        worker_metrics.started(self.tier, work.model, work.attempt, work.created_at)
        if not attempt.requests:
            self._end(attempt)
            return
        self._publish(attempt.opening_events())
        attempt.running = len(attempt.requests)
        for j, request in enumerate(attempt.requests):
            sink = _Sink(self._inbox, attempt, j)
            ctx.host.submit(request, sink).add_done_callback(sink.done)

    def _pump(self) -> bool:
        """Handle what the engine produced since last time (waits briefly for the first);
        True when a piece of durable work finished, so there is room to claim more."""
        finished = False
        out: list[tuple[str, Event]] = []
        items = [item for item in self._drain() if not self._redelivered(item)]
        self._announce([a for a, _, item in items if item is _NEW and isinstance(a, LiveAttempt)])
        for attempt, j, item in items:
            if item is _NEW:
                self._start(attempt)
            elif item is _DONE:
                attempt.running -= 1
                if attempt.running == 0:
                    self._stage(out)  # its text goes before its end
                    self._end(attempt)
                    finished = finished or not isinstance(attempt, LiveAttempt)
            elif isinstance(item, BaseException):
                attempt.on_failure(self.ctx, item)
            elif isinstance(item, Delta) and attempt.failure is None:
                attempt.on_delta(j, item, out)
            elif isinstance(item, Embedded) and isinstance(attempt, EmbeddingAttempt):
                if attempt.failure is None:
                    attempt.on_embedding(j, item)
        self._stage(out)
        self._flush()
        return finished

    def _redelivered(self, item: Item) -> bool:
        """A realtime request this feed has already taken: its task came again (Celery gives
        an unacknowledged message back when the broker connection drops and returns). Run
        twice, its second start would collide with the first inside the engine and answer
        the waiting client with that error, or bill it twice."""
        attempt, _, kind = item
        if kind is not _NEW or not isinstance(attempt, LiveAttempt):
            return False
        rid = attempt.work.id
        if rid in self._live_seen:
            log.info("ignoring a second delivery of realtime request %s", rid)
            return True
        self._live_seen[rid] = None
        if len(self._live_seen) > LIVE_SEEN:
            del self._live_seen[next(iter(self._live_seen))]
        return False

    def _announce(self, arrived: list[LiveAttempt]) -> None:
        """Publish the starts of realtime requests that arrived together in one round trip
        (those past the feed's room are refused in ``_start``)."""
        room = self.live_capacity - (len(self._inflight) - self._durable)
        arrived = arrived[: max(0, room)]
        if not arrived:
            return
        try:
            cancelled = self.ctx.platform.events.start_many(
                [(a.work.id, a.started()) for a in arrived]
            )
        except Exception as exc:  # each start tries again on its own
            log.warning("publishing %d starts failed: %s", len(arrived), exc)
            return
        for attempt, was_cancelled in zip(arrived, cancelled, strict=True):
            attempt.cancelled = was_cancelled

    def _drain(self) -> Iterator[Item]:
        held = self._pacer.wait(time.monotonic())
        try:
            yield self._inbox.get(timeout=0.2 if held is None else min(0.2, held))
        except queue.Empty:
            return
        for _ in range(4096):
            try:
                yield self._inbox.get_nowait()
            except queue.Empty:
                return

    def _stage(self, out: list[tuple[str, Event]]) -> None:
        """Pass ``out`` through the pacer; what may go now waits for the turn's end."""
        self._pacer.set_streams(len(self._inflight))
        self._unsent += self._pacer.admit(out, time.monotonic())
        out.clear()

    def _flush(self) -> None:
        self._publish(self._unsent)

    def _publish(self, out: list[tuple[str, Event]]) -> None:
        """Publish events in one round trip (never once the job is no longer ours)."""
        events = coalesce([(rid, e) for rid, e in out if not self.ctx.leases.lost(rid)])
        out.clear()
        if not events:
            return
        try:
            self.ctx.platform.events.publish_many(events)
        except Exception as exc:  # readers recover from the row; generation goes on
            log.warning("publishing %d events failed: %s", len(events), exc)

    def _end(self, attempt: Attempt) -> None:
        ctx, work = self.ctx, attempt.work
        if self._inflight.pop(work.id, None) is not None and not isinstance(attempt, LiveAttempt):
            self._durable -= 1
        worker_metrics.ended(
            self.tier, work.model, attempt.result, failed=attempt.failure is not None
        )
        bill = attempt.bill()
        if bill is not None:
            self._journal.append(bill)  # before the answer leaves: a kill -9 loses no bill
            self._bills.append(bill)
        # What it still holds goes out first: nothing of an ended request waits. A realtime
        # request's end goes out with the turn's other events; a job's before it is recorded.
        self._unsent += self._pacer.forget(work.id) + attempt.closing_events()
        if not isinstance(attempt, LiveAttempt):
            self._flush()
        try:
            done = attempt.finish(ctx)
            if done is None:
                if work.is_line:
                    self._hand_back(attempt)  # aborted from outside: back to the queue
                ctx.leases.release(work.id)
            elif work.is_line:
                self._recorder.add(done)  # its lease is released once written
            else:
                with ctx.platform.db.session() as s:
                    written = work.id in store.record(s, [done])
                ctx.leases.release(work.id)
                if isinstance(attempt, JobAttempt):
                    attempt.recorded(ctx, written, done.status)
        except Exception:
            log.exception("finishing %s failed; its lease will lapse and it is retried", work.id)
            ctx.leases.release(work.id)

    def _record_bills(self, *, force: bool = True) -> None:
        """Record realtime usage in groups, off the path of the next request's start."""
        due = len(self._bills) >= FLUSH_LINES or time.monotonic() - self._billed >= FLUSH_SECONDS
        if not self._bills or not (force or due):
            return
        self._billed = time.monotonic()
        try:
            with self.ctx.platform.db.session() as s:
                usage.record(s, self._bills)
        except Exception as exc:  # Postgres away: spool them, so a kill loses none
            log.warning("recording usage of %d requests failed: %s", len(self._bills), exc)
            if usage_spool.spool(self.ctx.platform.settings.var_path, self._bills):
                self._bills = []
                self._journal.clear()
            return
        self._bills = []
        self._journal.clear()

    def _hand_back(self, attempt: Attempt) -> None:
        with self.ctx.platform.db.session() as s:
            store.release(s, attempt.work)

    def _hand_back_all(self) -> None:
        """Abort what runs and return it to the queue at once (not after its lease)."""
        for attempt in list(self._inflight.values()):
            self.ctx.host.abort_group(attempt.work.id)
            if isinstance(attempt, LiveAttempt):
                continue  # its client sees the worker go
            try:
                self._hand_back(attempt)
            except Exception:
                log.exception("could not hand back %s; its lease will lapse", attempt.work.id)
            self.ctx.leases.release(attempt.work.id)
        self._inflight.clear()
        self._durable = 0


def coalesce(events: list[tuple[str, Event]]) -> list[tuple[str, Event]]:
    """Join each request's consecutive text of one choice into one event.

    Under load one turn of the feed holds several tokens of each stream. One event per token
    would cost every hop once more (a Redis entry, the API's relay, an SSE chunk the client
    parses); as with vLLM's own deltas for a lagging reader, a chunk then carries them all.
    """
    out: list[tuple[str, Event]] = []
    # (request, choice) -> position in ``out`` of its text event still open for joining.
    open_text: dict[tuple[str, int], int] = {}
    for rid, event in events:
        if isinstance(event, TextDelta):
            at = open_text.get((rid, event.index))
            if at is not None:
                out[at] = (rid, _joined(cast(TextDelta, out[at][1]), event))
                continue
            open_text[(rid, event.index)] = len(out)
        else:  # anything else of this request keeps its place after the text before it
            for key in [k for k in open_text if k[0] == rid]:
                del open_text[key]
        out.append((rid, event))
    return out


def _joined(first: TextDelta, then: TextDelta) -> TextDelta:
    logprobs = (first.logprobs or ()) + (then.logprobs or ())
    return TextDelta(
        first.index,
        first.text + then.text,
        then.output_tokens if then.output_tokens is not None else first.output_tokens,
        then.prompt_tokens if then.prompt_tokens is not None else first.prompt_tokens,
        logprobs or None,
    )


@dataclass(frozen=True)
class _Sink:
    """Routes one engine request's deltas to the feed's inbox (called on the engine loop)."""

    inbox: queue.Queue[Item]
    attempt: Attempt
    j: int

    def __call__(self, item: Delta | Embedded | BaseException) -> None:
        self.inbox.put((self.attempt, self.j, item))

    def done(self, _future: Future[None]) -> None:
        """The generation ended (after its last delta or its exception)."""
        self.inbox.put((self.attempt, self.j, _DONE))
