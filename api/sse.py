"""Server-sent events that the OpenAI SDK decodes, and the reply of a serving function."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from flask import Response, jsonify, stream_with_context

from inference_platform.endpoints.protocol import DONE, KEEPALIVE, Streamed, StreamItem


def _json(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"))


def encode(item: StreamItem) -> str:
    """One event: data-only (Chat Completions, Completions), named (Responses), a keep-alive
    comment, or the ``[DONE]`` line."""
    if item == DONE:
        return "data: [DONE]\n\n"
    if isinstance(item, tuple):
        kind, payload = item
        if kind == KEEPALIVE:
            return ": keep-alive\n\n"
        return f"event: {kind}\ndata: {_json(payload)}\n\n"
    assert not isinstance(item, str)
    return f"data: {_json(item)}\n\n"


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


def reply(result: Mapping[str, Any] | Streamed) -> Response:
    """A serving function's answer: its object as JSON, or its stream."""
    if isinstance(result, Streamed):
        return stream(map(encode, result.events), on_close=result.on_close)
    return jsonify(result)
