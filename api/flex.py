"""The flex branch shared by Chat Completions and Completions views."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from flask import Response, jsonify

from api import sse
from api.context import owner, platform
from inference_platform import flex, ids, jobs, realtime
from inference_platform.events import Event

Chunks = Callable[[realtime.Submitted, Iterator[Event], bool], Iterator[str]]


def respond(
    body: dict[str, Any], label: str, *, endpoint: str, id_prefix: str, chunks: Chunks
) -> Response:
    """A durable job on the flex queue; the client blocks, or streams, until it ends."""
    row = flex.submit(
        platform(),
        id=ids.new_id(id_prefix),
        owner=owner(),
        endpoint=endpoint,
        body=body,
        stream=bool(body.get("stream")),
    )
    if not body.get("stream"):
        return jsonify(flex.result(platform(), row.id))
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    job = realtime.Submitted(
        row.id, int(row.created_at.timestamp()), row.model, endpoint, label, body
    )
    events = flex.live_events(platform(), row.id)

    def on_close() -> None:
        # The client left: nobody will read this job's result.
        jobs.stop(platform(), row.id, status="cancelled")

    return sse.stream(chunks(job, events, include_usage), on_close=on_close)
