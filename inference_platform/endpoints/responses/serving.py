"""Serving ``/v1/responses``: creating responses in every tier, and following their streams.

* Not background, not flex: the realtime hot path (no Postgres before the answer); with
  ``store`` the final object is kept afterwards so it can be retrieved and continued.
* Background (any tier) or flex: a durable job, written to Postgres before it is enqueued;
  background returns at once, flex without background blocks until its job ends.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from inference_platform import conversations, flex, ids, jobs, realtime, tool_calls
from inference_platform import events as channel
from inference_platform.db.models import Request
from inference_platform.endpoints.protocol import Streamed
from inference_platform.endpoints.responses import inputs, protocol, store
from inference_platform.endpoints.responses.inputs import Conversation
from inference_platform.endpoints.responses.protocol import ResponseObject
from inference_platform.endpoints.responses.stream import (
    KEEPALIVE,
    Event,
    StreamBuilder,
    after,
    synthesize,
)
from inference_platform.errors import PlatformError, invalid
from inference_platform.events import End, Failed, Idle, Usage
from inference_platform.generation import RESPONSES
from inference_platform.jobs import follow
from inference_platform.jobs import store as job_store
from inference_platform.platform import Platform
from inference_platform.tiers import FLEX, REALTIME, reported_tier, tier_for

log = logging.getLogger(__name__)

# Cancel, delete and input items act on the stored response alone.
__all__ = ["cancel", "create", "delete", "follow_stream", "input_items", "retrieve"]
cancel, delete, input_items = store.cancel, store.delete, store.input_items


def create(platform: Platform, owner: str, body: dict[str, Any]) -> ResponseObject | Streamed:
    spec = platform.model(body["model"])
    spec.check_task(embeddings=False)
    tool_calls.check_parser(spec.name, spec.tool_parser, body)
    background = bool(body.get("background"))
    if background and body.get("store") is False:
        raise invalid(
            "Background responses must be stored; do not set `store` to false.", param="store"
        )
    body = _prepare(platform, owner, {**body, "model": spec.name})
    tier = tier_for(body.get("service_tier"))
    if background or tier == FLEX:
        return _durable(platform, owner, body, tier)
    return _realtime(platform, owner, body)


def _prepare(platform: Platform, owner: str, body: dict[str, Any]) -> dict[str, Any]:
    """Resolve the conversation (input items, history, messages) into the body."""
    previous, previous_output, prior = None, None, []
    if body.get("previous_response_id"):
        previous, previous_output = store.previous(platform, owner, body["previous_response_id"])
    if body.get("conversation"):
        prior = conversations.items(platform, owner, body["conversation"]["id"], "conversation")
    return Conversation.resolve(body, previous, previous_output, prior).attach(body)


def _join_conversation(
    platform: Platform, owner: str, body: dict[str, Any], final: ResponseObject
) -> None:
    """A realtime response in a conversation adds its input and output items to it."""
    found = body.get("conversation")
    if found and final["status"] in ("completed", "incomplete"):
        items = [*inputs.stored_items(body), *final["output"]]
        try:
            conversations.add(platform, owner, found["id"], items)
        except PlatformError:  # deleted while the response ran: the answer still stands
            log.info("conversation %s is gone; response %s not added", found["id"], final["id"])


# -- durable: background and flex ----------------------------------------------------------


def _durable(
    platform: Platform, owner: str, body: dict[str, Any], tier: str
) -> ResponseObject | Streamed:
    rid = ids.new_id(ids.RESPONSE)
    fields = {
        "background": bool(body.get("background")),
        "stream": bool(body.get("stream")),
        "store": body.get("store") is not False,
        "previous_response_id": body.get("previous_response_id"),
    }
    if tier == FLEX:
        row = flex.submit(platform, id=rid, owner=owner, endpoint=RESPONSES, body=body, **fields)
    else:
        _check_serves(platform, body["model"], REALTIME)
        # Background work gets the flex window as its deadline: nothing waits forever.
        row = jobs.enqueue(
            platform,
            id=rid,
            owner=owner,
            tier=REALTIME,
            endpoint=RESPONSES,
            model=body["model"],
            body=body,
            deadline_seconds=platform.settings.flex_deadline_seconds,
            **fields,
        )
    if body.get("conversation"):
        # Its items join the conversation when the job ends (read by the next reader).
        items = inputs.stored_items(body)
        conversations.pending(platform, body["conversation"]["id"], rid, items)
    if body.get("stream"):
        on_close = None
        if not row.background:  # like OpenAI: a foreground stream ends with its client

            def on_close() -> None:
                jobs.stop(platform, rid, status="cancelled")

        return Streamed(follow_stream(platform, row), on_close)
    if row.background:
        return flex.with_eta(platform, row, store.to_object(row))
    return _blocking_result(platform, rid)


def _check_serves(platform: Platform, model: str, tier: str) -> None:
    if not platform.model(model).serves(tier):
        raise PlatformError(
            400,
            f"The model `{model}` is not offered in the {tier} tier.",
            param="service_tier",
            code="invalid_value",
        )


def _blocking_result(platform: Platform, rid: str) -> ResponseObject:
    """Non-background flex: wait for the job's terminal event, then answer with it."""
    end = follow.wait(platform, rid, platform.settings.flex_wait_seconds)
    row = job_store.load(platform, rid)
    assert row is not None
    if row.status == "failed" and row.status_code and 400 <= row.status_code < 500:
        error = row.error or {}
        raise PlatformError(
            row.status_code,
            error.get("message", "The request failed."),
            code=error.get("code"),
            param=error.get("param"),
        )
    # Past the wait (end is None) the response still runs: the client can poll it by id.
    ended = end.result if isinstance(end, End | Failed) else None
    return ended or store.to_object(row)


def follow_stream(
    platform: Platform, row: Request, starting_after: int | None = None
) -> Iterator[Event]:
    """The Responses events of a durable or stored response, from any point."""
    return after(_follow(platform, row), starting_after)


def _follow(platform: Platform, row: Request) -> Iterator[Event]:
    base = store.base_object(row)
    if row.status not in jobs.RUNNING and not platform.events.exists(row.id):
        final = store.to_object(row)  # the channel has expired: rebuild from the object
        yield from synthesize(base, final, inputs.output_text(final))
        return
    builder = StreamBuilder(base)
    yield from builder.created()
    settings = platform.settings
    limit = max(settings.flex_deadline_seconds, settings.request_timeout_seconds) + 60
    try:
        for event in follow.events(platform, row.id, timeout=limit):
            if isinstance(event, Idle):
                yield KEEPALIVE, {}
                continue
            if isinstance(event, End | Failed):
                ended = follow.final_object(event)
                if ended is None:
                    ended = store.to_object(job_store.load(platform, row.id) or row)
                yield from builder.finish(ended)
                return
            yield from builder.feed(event)
    except TimeoutError:
        return


# -- realtime hot path ----------------------------------------------------------------------


def _realtime(platform: Platform, owner: str, body: dict[str, Any]) -> ResponseObject | Streamed:
    job = realtime.submit(
        platform,
        owner=owner,
        endpoint=RESPONSES,
        body=body,
        id_prefix=ids.RESPONSE,
        service_tier=reported_tier(body.get("service_tier")),
        tier=REALTIME,
    )
    keep = body.get("store") is not False
    if body.get("stream"):
        events = realtime.follow_started(platform, job)
        return Streamed(
            _live(platform, owner, body, job, events, keep),
            on_close=lambda: realtime.cancel(platform, job),
        )
    got = realtime.collect(platform, job, 1)
    final = protocol.finished(
        id=job.id,
        created_at=job.created,
        body=body,
        status="completed",
        text=got.texts[0],
        input_tokens=got.usage.prompt_tokens,
        output_tokens=got.usage.completion_tokens,
        cached_tokens=got.usage.cached_tokens,
        finish_reason=got.finish[0],
    )
    if keep:
        store.save_finished(platform, owner=owner, body=body, result=final)
    _join_conversation(platform, owner, body, final)
    return final


def _live(
    platform: Platform,
    owner: str,
    body: dict[str, Any],
    job: realtime.Submitted,
    events: Iterator[channel.Event],
    keep: bool,
) -> Iterator[Event]:
    base = protocol.response(id=job.id, created_at=job.created, body=body, status="in_progress")
    builder = StreamBuilder(base)
    yield from builder.created()
    end: End | None = None
    try:
        for event in events:
            if isinstance(event, End):
                end = event
                break
            yield from builder.feed(event)
    except PlatformError as err:
        failed = protocol.finished(
            id=job.id,
            created_at=job.created,
            body=body,
            status="failed",
            text=builder.text if builder.started else None,
            input_tokens=None,
            output_tokens=None,
            error=protocol.response_error(err.status, err.message),
        )
        yield from builder.finish(failed)
        return
    used = end.usage if end is not None else Usage()
    final = protocol.finished(
        id=job.id,
        created_at=job.created,
        body=body,
        status="completed",
        text=builder.text,
        input_tokens=used.prompt_tokens,
        output_tokens=used.completion_tokens,
        cached_tokens=used.cached_tokens,
        finish_reason=builder.finish_reason,
    )
    if keep:
        # Before the last event: a client that reads it and retrieves the id finds it.
        store.save_finished(platform, owner=owner, body=body, result=final)
    _join_conversation(platform, owner, body, final)
    yield from builder.finish(final)


def retrieve(
    platform: Platform,
    owner: str,
    response_id: str,
    *,
    stream: bool,
    starting_after: int | None,
) -> ResponseObject | Streamed:
    row = store.load(platform, owner, response_id)
    if stream:
        return Streamed(follow_stream(platform, row, starting_after))
    return flex.with_eta(platform, row, store.current_object(platform, row))
