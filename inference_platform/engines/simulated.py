"""A model-free engine for load tests: deterministic words at a configurable speed.

Every request produces exactly ``max_tokens`` words (finish "length") unless a stop string cuts
it short (finish "stop"); the words depend only on the prompt, the seed and their index. It is
cheap enough for tens of thousands of concurrent requests: no per-request tasks, no per-token
sleeps when unpaced, and grouped wake-ups when paced.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import itertools
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from inference_platform.engines.base import (
    Delta,
    Engine,
    EngineAborted,
    EngineError,
    GenerationRequest,
    context_length_error,
)
from inference_platform.engines.prefix_cache import DEFAULT_BLOCK, PrefixCache

_WORDS = tuple(
    """
    alpha bravo river stone cloud amber quiet garden signal harbor maple copper lantern meadow
    orbit pixel thunder velvet willow canyon ember falcon glacier horizon island jasmine kernel
    lemon marble nectar ocean pepper quartz raven saffron timber umbra violet walnut yonder zephyr
    answer batch token stream engine worker server queue model prompt window letter number story
    bright calm early gentle happy little modern simple steady swift tender vivid warm young
    build carry count follow gather listen measure notice open reach share travel wander write
    """.split()
)


@dataclass(frozen=True)
class _Plan:
    """The whole output, decided up front: ``pieces[i]`` is the text of token ``i``."""

    pieces: tuple[str, ...]
    finish_reason: str


def _words_for(prompt: str, seed: int | None, count: int) -> list[str]:
    digest = hashlib.blake2b(f"{seed}\x00{prompt}".encode(), digest_size=8).digest()
    rng = random.Random(int.from_bytes(digest, "big"))
    return rng.choices(_WORDS, k=count)


def plan_output(prompt: str, seed: int | None, max_tokens: int, stop: Sequence[str]) -> _Plan:
    """Deterministic output for a request: the same inputs always give the same text."""
    words = _words_for(prompt, seed, max_tokens)
    pieces = [word if i == 0 else f" {word}" for i, word in enumerate(words)]
    text = "".join(pieces)
    # Earliest stop string wins; on a tie the shorter one ends first.
    hits = sorted((i, i + len(s)) for s in stop if s and (i := text.find(s)) >= 0)
    if not hits:
        return _Plan(tuple(pieces), "length")
    cut, end = hits[0]
    return _Plan(_cut_pieces(pieces, cut, end), "stop")


def _cut_pieces(pieces: list[str], cut: int, end: int) -> tuple[str, ...]:
    """Text truncated at ``cut``; tokens run up to the one in which the stop string ends.

    That token still counts as generated (as in real engines), so a stop string spanning
    several words leaves some tokens with empty text.
    """
    out: list[str] = []
    offset = 0
    for piece in pieces:
        out.append(piece[: max(0, cut - offset)])
        offset += len(piece)
        if offset >= end:
            break
    return tuple(out)


class _PrioritySlots:
    """A semaphore whose waiters are served by (priority, arrival): realtime before batch."""

    def __init__(self, capacity: int) -> None:
        self._free = capacity
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, fut in self._waiters if not fut.done())

    def try_acquire(self) -> bool:
        # ``release`` hands slots straight to live waiters, so free slots imply no live waiter.
        if self._free > 0:
            self._free -= 1
            return True
        return False

    def enqueue(self, priority: int) -> asyncio.Future[None]:
        """A future resolved when a slot is handed over; cancel it to leave the queue."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._arrivals), fut))
        return fut

    def release(self) -> None:
        while self._waiters:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)  # the slot passes straight to the waiter
                return
        self._free += 1


@dataclass(eq=False)
class _Running:
    """Abort handle: ``abort`` fails whatever future the request is currently waiting on."""

    request_id: str
    aborted: bool = False
    waiter: asyncio.Future[None] | None = field(default=None)


class SimulatedEngine(Engine):
    """No model: deterministic words, whitespace tokenization, configurable latency.

    engine_args: ``ttft_ms`` (0), ``tokens_per_second`` (0 = instant), ``max_model_len``
    (8192), ``batch_size`` (256 concurrent generations; more wait, best priority first),
    ``stream_interval_ms`` (10: paced tokens due within this interval are sent together),
    ``prefix_cache_tokens`` (65536; 0 = none) and ``prefix_block_tokens`` (16): a simulated
    prefix cache (``engines.prefix_cache``) that makes ``cached_tokens`` deterministic: a prompt
    finds cached the leading full blocks of words an earlier prompt had. Nothing is computed
    either way; only the reported usage differs.
    """

    kind = "simulated"
    simulated = True

    def __init__(self, model_name: str, path: str | None, engine_args: dict[str, Any]) -> None:
        super().__init__(model_name, path, engine_args)
        self._ttft = float(self.engine_args.get("ttft_ms", 0)) / 1000.0
        self._tps = float(self.engine_args.get("tokens_per_second", 0))
        self._max_len = int(self.engine_args.get("max_model_len", 8192))
        self._interval = float(self.engine_args.get("stream_interval_ms", 10)) / 1000.0
        self._slots = _PrioritySlots(max(1, int(self.engine_args.get("batch_size", 256))))
        block = int(self.engine_args.get("prefix_block_tokens", DEFAULT_BLOCK))
        capacity = int(self.engine_args.get("prefix_cache_tokens", 65536)) // block
        self._cache = PrefixCache(block, capacity) if capacity > 0 else None
        self._running: dict[str, _Running] = {}

    async def start(self) -> None:
        """Nothing to load."""

    async def stop(self) -> None:
        for run in list(self._running.values()):
            self._abort_run(run)

    @property
    def max_model_len(self) -> int:
        return self._max_len

    def render_chat(
        self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None
    ) -> str:
        lines = [f"{m.get('role', 'user')}: {m.get('content') or ''}" for m in messages]
        return "\n".join([*lines, "assistant:"])

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stats(self) -> dict[str, int]:
        waiting = self._slots.waiting
        return {"running": len(self._running) - waiting, "waiting": waiting}

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        params = request.params
        words = request.prompt.split()
        prompt_tokens = len(words)
        if prompt_tokens + params.max_tokens > self._max_len:
            raise context_length_error(prompt_tokens, params.max_tokens, self._max_len)
        if request.request_id in self._running:
            raise EngineError(f"request id {request.request_id!r} is already in use")
        cached = self._cache.serve(words) if self._cache is not None else 0
        plan = plan_output(request.prompt, params.seed, max(0, params.max_tokens), params.stop)
        run = _Running(request.request_id)
        self._running[request.request_id] = run
        try:
            await self._acquire(run, request.priority)
            try:
                async for delta in self._stream(run, plan, prompt_tokens, cached):
                    yield delta
            finally:
                self._slots.release()
        finally:
            self._running.pop(request.request_id, None)

    async def abort(self, request_id: str) -> None:
        run = self._running.get(request_id)
        if run is not None:
            self._abort_run(run)

    # ----------------------------------------------------------------------------- internals

    def _abort_run(self, run: _Running) -> None:
        run.aborted = True
        if run.waiter is not None and not run.waiter.done():
            run.waiter.set_exception(EngineAborted(f"request {run.request_id} was aborted"))

    async def _wait(self, run: _Running, fut: asyncio.Future[None]) -> None:
        """Await ``fut`` such that ``abort`` interrupts it with EngineAborted."""
        run.waiter = fut
        try:
            await fut
        finally:
            run.waiter = None

    async def _acquire(self, run: _Running, priority: int) -> None:
        if self._slots.try_acquire():
            return
        fut = self._slots.enqueue(priority)
        try:
            await self._wait(run, fut)
        except BaseException:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self._slots.release()  # granted just as we were cancelled: hand it on
            elif not fut.done():
                fut.cancel()
            raise

    async def _sleep(self, run: _Running, delay: float) -> None:
        if run.aborted:
            raise EngineAborted(f"request {run.request_id} was aborted")
        if delay <= 0:
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        handle = loop.call_later(delay, _resolve, fut)
        try:
            await self._wait(run, fut)
        finally:
            handle.cancel()

    async def _stream(
        self, run: _Running, plan: _Plan, prompt_tokens: int, cached: int
    ) -> AsyncIterator[Delta]:
        total = len(plan.pieces)
        if self._tps <= 0:
            await self._sleep(run, self._ttft)
            text = "".join(plan.pieces)
            yield Delta(text, plan.finish_reason, prompt_tokens, total, cached_tokens=cached)
            return
        loop = asyncio.get_running_loop()
        # Token i is due at ttft + i / tps after the start; absolute deadlines avoid drift.
        start = loop.time() + self._ttft
        sent = 0
        while True:
            wait = start + sent / self._tps - loop.time()
            if sent:
                # Wake at most once per stream interval and send every token due by then:
                # at high speeds this groups tokens instead of sleeping per token.
                wait = max(wait, self._interval)
            await self._sleep(run, wait)
            elapsed = loop.time() - start
            due = min(total, max(sent + 1, int(elapsed * self._tps) + 1))
            finish = plan.finish_reason if due >= total else None
            text = "".join(plan.pieces[sent:due])
            sent = due
            if text or finish:
                yield Delta(text, finish, prompt_tokens, sent, cached_tokens=cached)
            if finish:
                return


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
