"""Serving ``POST /v1/completions`` in any tier."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from inference_platform import ids, realtime
from inference_platform.endpoints import serving
from inference_platform.endpoints.completions.protocol import (
    TextCompletion,
    choice_count,
    text_completion,
    text_completion_chunk,
    wants_logprobs,
)
from inference_platform.endpoints.logprobs import completion_logprobs, text_length
from inference_platform.endpoints.protocol import Streamed, include_usage
from inference_platform.events import ChoiceEnd, End, Event, TextDelta
from inference_platform.generation import COMPLETIONS
from inference_platform.platform import Platform


def create(platform: Platform, owner: str, body: dict[str, Any]) -> Mapping[str, Any] | Streamed:
    """A ``text_completion``, or its stream of chunks."""
    return serving.create(platform, owner, body, FAMILY)


def _build(job: realtime.Submitted, result: realtime.Collected) -> TextCompletion:
    return text_completion(
        id=job.id,
        created=job.created,
        model=job.model,
        body=job.body,
        choices=list(zip(result.texts, result.finish, strict=True)),
        usage=result.usage,
        service_tier=job.service_tier,
        logprobs=result.logprobs,
    )


def _chunks(job: realtime.Submitted, events: Iterator[Event]) -> Iterator[TextCompletion]:
    usage_wanted = include_usage(job.body)
    with_logprobs = wants_logprobs(job.body)
    # Where each choice's next token starts in its text, for ``text_offset``.
    offsets: dict[int, int] = {}
    for event in events:
        logprobs = None
        if isinstance(event, TextDelta):
            piece: tuple[int, str, str | None] | None = (event.index, event.text, None)
            if with_logprobs:
                tokens = event.logprobs or ()
                start = offsets.get(event.index, 0)
                logprobs = completion_logprobs(tokens, start)
                offsets[event.index] = start + text_length(tokens)
        elif isinstance(event, ChoiceEnd):
            piece = (event.index, "", event.finish_reason)
        elif isinstance(event, End) and usage_wanted:
            piece = None
        else:
            continue
        yield text_completion_chunk(
            id=job.id,
            created=job.created,
            model=job.model,
            choice=piece,
            include_usage=usage_wanted,
            usage=event.usage if isinstance(event, End) else None,
            logprobs=logprobs,
        )


FAMILY = serving.Family(COMPLETIONS, ids.COMPLETION, choice_count, _build, _chunks)
