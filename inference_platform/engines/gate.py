"""The background gate of a shared engine: at most N flex and batch generations in the engine
at once, so realtime always finds room (vLLM's priority policy never preempts running work).

Waiters pass by ``(priority, arrival)``, not first come, first served: a worker keeps many
claimed lines waiting here, and a line due sooner (a lower priority value, from its deadline's
slack) must not wait behind lines that were claimed before it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools


class PriorityGate:
    """An asyncio semaphore whose waiters are served lowest priority value first."""

    def __init__(self, limit: int) -> None:
        self._free = max(1, limit)
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    async def acquire(self, priority: int) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._arrivals), fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # handed over just as we were cancelled: pass it on
            raise

    def release(self) -> None:
        while self._waiters:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)  # the place passes straight to the waiter
                return
        self._free += 1
