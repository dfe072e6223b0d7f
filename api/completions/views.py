"""``POST /v1/completions``."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, Response, jsonify

from api import flex as flex_views
from api import sse
from api.context import owner, platform
from api.validation import json_body, load
from inference_platform import ids, realtime
from inference_platform.errors import PlatformError
from inference_platform.events import ChoiceEnd, End, Event, TextDelta
from inference_platform.generation import COMPLETIONS
from inference_platform.openai import completions as objects
from inference_platform.schemas.completions import CompletionPostSchema
from inference_platform.tiers import FLEX, reported_tier, tier_for

bp = Blueprint("completions", __name__, url_prefix="/v1")
_schema = CompletionPostSchema()


def _n_choices(body: dict) -> int:
    prompts = 1 if isinstance(body["prompt"], str) else len(body["prompt"])
    return prompts * int(body["n"])


@bp.post("/completions")
def create() -> Response:
    """Create a text completion, streamed or whole."""
    body = load(_schema, json_body())
    label = reported_tier(body.get("service_tier"))
    if tier_for(body.get("service_tier")) == FLEX:
        return flex_views.respond(
            body, label, endpoint=COMPLETIONS, id_prefix=ids.COMPLETION, chunks=_chunks
        )
    job = realtime.submit(
        platform(),
        owner=owner(),
        endpoint=COMPLETIONS,
        body=body,
        id_prefix=ids.COMPLETION,
        service_tier=label,
        tier=tier_for(body.get("service_tier")),
    )
    n = _n_choices(body)
    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        events = realtime.follow_started(platform(), job)
        return sse.stream(
            _chunks(job, events, include_usage), on_close=lambda: realtime.cancel(platform(), job)
        )
    result = realtime.collect(platform(), job, n)
    texts = objects.echoed(body, result.texts)
    return jsonify(
        objects.completion(
            id=job.id,
            created=job.created,
            model=job.model,
            choices=list(zip(texts, result.finish, strict=True)),
            prompt_tokens=result.usage.prompt_tokens,
            completion_tokens=result.usage.completion_tokens,
            service_tier=label,
        )
    )


def _chunks(job: realtime.Submitted, events: Iterator[Event], include_usage: bool) -> Iterator[str]:
    def chunk(index: int, text: str, finish: str | None) -> str:
        payload = objects.completion(
            id=job.id,
            created=job.created,
            model=job.model,
            choices=[(text, finish)],
            prompt_tokens=None,
            completion_tokens=None,
        )
        payload["choices"][0]["index"] = index
        if include_usage:
            payload["usage"] = None
        return sse.data(payload)

    try:
        for event in events:
            if isinstance(event, TextDelta):
                yield chunk(event.index, event.text, None)
            elif isinstance(event, ChoiceEnd):
                yield chunk(event.index, "", event.finish_reason)
            elif isinstance(event, End) and include_usage:
                u = event.usage
                final = objects.completion(
                    id=job.id,
                    created=job.created,
                    model=job.model,
                    choices=[],
                    prompt_tokens=u.prompt_tokens,
                    completion_tokens=u.completion_tokens,
                )
                yield sse.data(final)
    except PlatformError as err:
        yield sse.data(err.envelope())
        return
    yield sse.DONE
