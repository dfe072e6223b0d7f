"""Hosts one engine on one long-lived event loop thread inside a worker process.

Celery task threads hand generation requests to the loop and receive deltas through a
thread-safe queue, so the loop only runs the engine and never blocks on Redis or Postgres.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from inference_platform.engines.base import (
    Delta,
    Embedded,
    EmbeddingRequest,
    Engine,
    GenerationRequest,
)
from inference_platform.engines.gate import PriorityGate

log = logging.getLogger(__name__)
T = TypeVar("T")

_DONE = object()


class EngineHost:
    def __init__(self, engine: Engine, *, background_slots: int | None = None) -> None:
        self.engine = engine
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="engine-loop", daemon=True
        )
        self._tokenizer_lock = threading.Lock()
        # Generations in flight, by request group (the part of the id before ':').
        self._active: dict[str, set[str]] = {}
        self._active_lock = threading.Lock()
        self._background_slots = background_slots
        self._background_gate: PriorityGate | None = None

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()
        self.call(self._start())

    async def _start(self) -> None:
        if self._background_slots:
            self._background_gate = PriorityGate(self._background_slots)
        await self.engine.start()

    def stop(self) -> None:
        try:
            self.call(self.engine.stop(), timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            # Close the stopped loop: an unclosed one keeps its selector and self-pipe open.
            self._thread.join(timeout=30)
            if not self._thread.is_alive():
                self._loop.close()

    def call(self, coro: Any, timeout: float | None = None) -> Any:
        """Run a coroutine on the engine loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # -- tokenizer helpers (fast tokenizers are not safe to share across threads) --------
    def render_chat(
        self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None
    ) -> str:
        with self._tokenizer_lock:
            return self.engine.render_chat(messages, tools)

    def count_tokens(self, text: str) -> int:
        with self._tokenizer_lock:
            return self.engine.count_tokens(text)

    # -- generation ---------------------------------------------------------------------
    def stream(
        self, requests: Sequence[GenerationRequest]
    ) -> Iterator[tuple[int, Delta | BaseException]]:
        """Run ``requests`` concurrently; yield ``(index, delta)`` as produced and
        ``(index, exception)`` for a request that failed. Ends when all have finished."""
        out: queue.Queue[Any] = queue.Queue()
        futures = [self._submit(req, _indexed(out, i)) for i, req in enumerate(requests)]
        for fut in futures:
            fut.add_done_callback(lambda _f: out.put(_DONE))
        remaining = len(futures)
        while remaining:
            item = out.get()
            if item is _DONE:
                remaining -= 1
                continue
            yield item

    def submit(
        self,
        req: GenerationRequest | EmbeddingRequest,
        sink: Callable[[Delta | Embedded | BaseException], None],
    ) -> Future[None]:
        """Start one generation (or embedding); ``sink`` gets each delta (or the embedding),
        or the exception that ended it, on the engine's loop thread. The future is done when
        the request has ended."""
        return self._submit(req, sink)

    def _submit(
        self, req: GenerationRequest | EmbeddingRequest, sink: Callable[[Any], None]
    ) -> Future[None]:
        group = req.request_id.split(":", 1)[0]
        with self._active_lock:
            self._active.setdefault(group, set()).add(req.request_id)

        async def run() -> None:
            try:
                gate = self._background_gate if req.priority > 0 else None
                if gate is not None:
                    await gate.acquire(req.priority)
                    try:
                        await self._generate(req, sink)
                    finally:
                        gate.release()
                else:
                    await self._generate(req, sink)
            except BaseException as exc:  # delivered to the caller, not lost in the loop
                sink(exc)
            finally:
                with self._active_lock:
                    ids = self._active.get(group)
                    if ids is not None:
                        ids.discard(req.request_id)
                        if not ids:
                            del self._active[group]

        return asyncio.run_coroutine_threadsafe(run(), self._loop)

    async def _generate(
        self, req: GenerationRequest | EmbeddingRequest, sink: Callable[[Any], None]
    ) -> None:
        if isinstance(req, EmbeddingRequest):
            sink(await self.engine.embed(req))
            return
        async for delta in self.engine.generate(req):
            sink(delta)

    def abort_group(self, group: str) -> bool:
        """Abort every generation of one request (all its choices); True if any ran."""
        with self._active_lock:
            ids = list(self._active.get(group, ()))
        for request_id in ids:
            asyncio.run_coroutine_threadsafe(self.engine.abort(request_id), self._loop)
        return bool(ids)


def _indexed(out: queue.Queue[Any], index: int) -> Callable[[Any], None]:
    """A sink that tags each item with the index of the request it belongs to."""
    return lambda item: out.put((index, item))


__all__ = ["EngineHost"]
