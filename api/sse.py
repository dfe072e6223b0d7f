"""Server-sent events that the OpenAI SDK decodes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Response, stream_with_context

DONE = "data: [DONE]\n\n"


def data(payload: dict[str, Any]) -> str:
    """A data-only event (Chat Completions and Completions use no ``event:`` line)."""
    return "data: " + json.dumps(payload, separators=(",", ":")) + "\n\n"


def named(event: str, payload: dict[str, Any]) -> str:
    """A named event (Responses streams)."""
    return f"event: {event}\ndata: " + json.dumps(payload, separators=(",", ":")) + "\n\n"


def stream(events: Iterable[str], on_close: Callable[[], None] | None = None) -> Response:
    """Relay ``events`` as they are produced; ``on_close`` runs only when the stream ends
    early (the client went away), to abort the work behind it."""

    def body() -> Iterator[str]:
        finished = False
        try:
            yield from events
            finished = True
        finally:
            if not finished and on_close is not None:
                on_close()

    response = Response(stream_with_context(body()), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response
