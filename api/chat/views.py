"""``POST /v1/chat/completions``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, jsonify

from api import flex as flex_views
from api import sse
from api.context import owner, platform
from api.validation import json_body, load
from inference_platform import ids, realtime
from inference_platform.errors import PlatformError
from inference_platform.events import ChoiceEnd, End, Event, TextDelta
from inference_platform.generation import CHAT
from inference_platform.openai import chat as objects
from inference_platform.openai.common import chat_usage
from inference_platform.schemas.chat import ChatCompletionPostSchema
from inference_platform.tiers import FLEX, reported_tier, tier_for

bp = Blueprint("chat", __name__, url_prefix="/v1")
_schema = ChatCompletionPostSchema()


@bp.post("/chat/completions")
def create() -> Response:
    """Create a chat completion, streamed or whole."""
    body = load(_schema, json_body())
    label = reported_tier(body.get("service_tier"))
    if tier_for(body.get("service_tier")) == FLEX:
        return flex_views.respond(
            body,
            label,
            endpoint=CHAT,
            id_prefix=ids.CHAT,
            chunks=lambda job, events, usage: _chunks(job, events, body["n"], usage),
        )
    job = realtime.submit(
        platform(),
        owner=owner(),
        endpoint=CHAT,
        body=body,
        id_prefix=ids.CHAT,
        service_tier=label,
        tier=tier_for(body.get("service_tier")),
    )
    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        events = realtime.follow_started(platform(), job)
        return sse.stream(
            _chunks(job, events, body["n"], include_usage),
            on_close=lambda: realtime.cancel(platform(), job),
        )
    result = realtime.collect(platform(), job, body["n"])
    return jsonify(
        objects.completion(
            id=job.id,
            created=job.created,
            model=job.model,
            choices=list(zip(result.texts, result.finish, strict=True)),
            prompt_tokens=result.usage.prompt_tokens,
            completion_tokens=result.usage.completion_tokens,
            service_tier=label,
        )
    )


def _chunks(
    job: realtime.Submitted, events: Iterator[Event], n: int, include_usage: bool
) -> Iterator[str]:
    def chunk(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> str:
        return sse.data(
            objects.chunk(
                id=job.id,
                created=job.created,
                model=job.model,
                service_tier=job.service_tier,
                choices=choices,
                include_usage=include_usage,
                usage=usage,
            )
        )

    yield chunk([objects.delta_choice(i, {"role": "assistant", "content": ""}) for i in range(n)])
    try:
        yield from _relay(events, chunk, include_usage)
    except PlatformError as err:
        # Headers are gone; the SDK raises APIError on an event carrying "error".
        yield sse.data(err.envelope())
        return
    yield sse.DONE


def _relay(events: Iterator[Event], chunk: Any, include_usage: bool) -> Iterator[str]:
    for event in events:
        if isinstance(event, TextDelta):
            yield chunk([objects.delta_choice(event.index, {"content": event.text})])
        elif isinstance(event, ChoiceEnd):
            yield chunk([objects.delta_choice(event.index, {}, event.finish_reason)])
        elif isinstance(event, End) and include_usage:
            u = event.usage
            yield chunk([], chat_usage(u.prompt_tokens, u.completion_tokens))
