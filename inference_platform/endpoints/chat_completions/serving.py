"""Serving ``POST /v1/chat/completions`` in any tier."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from inference_platform import ids, realtime
from inference_platform.endpoints import serving
from inference_platform.endpoints.chat_completions.protocol import (
    ChatCompletion,
    ChatCompletionChunk,
    ChunkChoice,
    chat_completion,
    chat_completion_chunk,
    choice_count,
    chunk_choice,
)
from inference_platform.endpoints.protocol import Streamed, include_usage
from inference_platform.events import ChoiceEnd, End, Event, TextDelta, Usage
from inference_platform.generation import CHAT
from inference_platform.platform import Platform


def create(platform: Platform, owner: str, body: dict[str, Any]) -> Mapping[str, Any] | Streamed:
    """A ``chat.completion``, or its stream of chunks."""
    return serving.create(platform, owner, body, FAMILY)


def _build(job: realtime.Submitted, result: realtime.Collected) -> ChatCompletion:
    return chat_completion(
        id=job.id,
        created=job.created,
        model=job.model,
        choices=list(zip(result.texts, result.finish, strict=True)),
        usage=result.usage,
        service_tier=job.service_tier,
    )


def _chunks(job: realtime.Submitted, events: Iterator[Event]) -> Iterator[ChatCompletionChunk]:
    usage_wanted = include_usage(job.body)

    def chunk(choices: list[ChunkChoice], usage: Usage | None = None) -> ChatCompletionChunk:
        return chat_completion_chunk(
            id=job.id,
            created=job.created,
            model=job.model,
            service_tier=job.service_tier,
            choices=choices,
            include_usage=usage_wanted,
            usage=usage,
        )

    roles = {"role": "assistant", "content": ""}
    yield chunk([chunk_choice(i, roles) for i in range(choice_count(job.body))])
    for event in events:
        if isinstance(event, TextDelta):
            yield chunk([chunk_choice(event.index, {"content": event.text})])
        elif isinstance(event, ChoiceEnd):
            yield chunk([chunk_choice(event.index, {}, event.finish_reason)])
        elif isinstance(event, End) and usage_wanted:
            yield chunk([], event.usage)


FAMILY = serving.Family(CHAT, ids.CHAT, choice_count, _build, _chunks)
