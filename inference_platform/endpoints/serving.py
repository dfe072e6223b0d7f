"""Serving shared by Chat Completions and Completions: which tier runs a request, waiting for
its whole result, or turning its events into stream chunks.

* realtime (every ``service_tier`` but flex): the hot path, no Postgres before the answer;
* flex: a durable job; the client blocks, or streams, until it ends.

A family says how many choices a request has, how to build its object from a collected
result, and how to turn channel events into chunk payloads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from inference_platform import flex, ids, jobs, realtime, tool_calls
from inference_platform.endpoints.protocol import DONE, Streamed, StreamItem
from inference_platform.errors import PlatformError
from inference_platform.events import Event
from inference_platform.platform import Platform
from inference_platform.tiers import FLEX, reported_tier, tier_for

Chunks = Callable[[realtime.Submitted, Iterator[Event]], Iterator[Mapping[str, Any]]]


@dataclass(frozen=True)
class Family:
    endpoint: str
    id_prefix: str
    choice_count: Callable[[Mapping[str, Any]], int]
    build: Callable[[realtime.Submitted, realtime.Collected], Mapping[str, Any]]
    chunks: Chunks


def create(
    platform: Platform, owner: str, body: dict[str, Any], family: Family
) -> Mapping[str, Any] | Streamed:
    """Run ``body`` in its tier: the whole object, or its stream."""
    spec = platform.model(body.get("model"))
    tool_calls.check_parser(spec.name, spec.tool_parser, body)
    if tier_for(body.get("service_tier")) == FLEX:
        return _flex(platform, owner, body, family)
    job = realtime.submit(
        platform,
        owner=owner,
        endpoint=family.endpoint,
        body=body,
        id_prefix=family.id_prefix,
        service_tier=reported_tier(body.get("service_tier")),
        tier=tier_for(body.get("service_tier")),
    )
    if not body.get("stream"):
        return family.build(job, realtime.collect(platform, job, family.choice_count(body)))
    events = realtime.follow_started(platform, job)
    return Streamed(
        _until_done(family.chunks(job, events)), on_close=lambda: realtime.cancel(platform, job)
    )


def _flex(
    platform: Platform, owner: str, body: dict[str, Any], family: Family
) -> Mapping[str, Any] | Streamed:
    row = flex.submit(
        platform,
        id=ids.new_id(family.id_prefix),
        owner=owner,
        endpoint=family.endpoint,
        body=body,
        stream=bool(body.get("stream")),
    )
    if not body.get("stream"):
        return flex.result(platform, row.id)
    label = reported_tier(body.get("service_tier"))
    created = int(row.created_at.timestamp())
    job = realtime.Submitted(row.id, created, row.model, family.endpoint, label, body)
    events = flex.live_events(platform, row.id)

    def on_close() -> None:
        # The client left: nobody will read this job's result.
        jobs.stop(platform, row.id, status="cancelled")

    return Streamed(_until_done(family.chunks(job, events)), on_close=on_close)


def _until_done(chunks: Iterator[Mapping[str, Any]]) -> Iterator[StreamItem]:
    """The chunks, then ``[DONE]``; an error after the headers went out ends the stream
    with an event carrying ``error``, which the SDK raises as APIError."""
    try:
        yield from chunks
    except PlatformError as err:
        yield err.envelope()
        return
    yield DONE
