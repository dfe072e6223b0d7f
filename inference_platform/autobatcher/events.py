"""Lifecycle events: what the autobatcher tells an optional handler (and the proxy prints).

A handler is a plain function or a coroutine function taking one ``Event``; its exceptions
are logged and never reach the callers whose requests it watches.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

# Event kinds, as the ``event`` field of ``Event.as_dict``.
BATCH_SUBMITTED = "batch_submitted"
BATCH_PROGRESS = "batch_progress"
BATCH_DONE = "batch_done"  # every request of the batch answered (or failed)
BATCH_RESUBMITTED = "batch_resubmitted"
SUBMIT_FAILED = "submit_failed"
RATE_LIMITED = "rate_limited"
FLEX_SUBMITTED = "flex_submitted"
FLEX_DONE = "flex_done"
CLOSED = "closed"


@dataclass(frozen=True)
class Event:
    kind: str
    batch_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {
            "event": self.kind,
            "at": round(self.at, 3),
            "batch_id": self.batch_id,
            **self.detail,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), default=str)


EventHandler = Callable[[Event], None] | Callable[[Event], Awaitable[None]]


class Emitter:
    """Calls the handler, if any; an async handler runs as a task of its own."""

    def __init__(self, handler: EventHandler | None) -> None:
        self._handler = handler
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, kind: str, batch_id: str | None = None, **detail: Any) -> None:
        if self._handler is None:
            return
        event = Event(kind, batch_id, detail)
        try:
            result = self._handler(event)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(self._guard(result))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except Exception:
            log.exception("autobatcher event handler failed on %s", kind)

    @staticmethod
    async def _guard(result: Awaitable[None]) -> None:
        try:
            await result
        except Exception:
            log.exception("autobatcher event handler failed")
