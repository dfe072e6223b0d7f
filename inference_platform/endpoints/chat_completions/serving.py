"""Serving ``POST /v1/chat/completions`` in any tier."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from inference_platform import ids, realtime, structured, tool_calls
from inference_platform.endpoints import serving
from inference_platform.endpoints.chat_completions.protocol import (
    ChatCompletion,
    ChatCompletionChunk,
    ChunkChoice,
    chat_completion,
    chat_completion_chunk,
    choice_count,
    chunk_choice,
    tool_call,
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
        body=job.body,
        logprobs=result.logprobs,
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
    parsed = structured.tool_mode(job.body) or tool_calls.parses_auto(job.body)
    calls = _ToolCallDeltas(job) if parsed else None
    with_logprobs = job.body.get("logprobs") is True
    for event in events:
        if isinstance(event, TextDelta):
            delta = calls.text(event) if calls else {"content": event.text}
            logprobs = (event.logprobs or ()) if with_logprobs else None
            if delta or logprobs:
                # A token may add no text yet (part of a character): its entry still goes out.
                yield chunk([chunk_choice(event.index, delta or {}, logprobs=logprobs)])
        elif isinstance(event, ChoiceEnd):
            finish = event.finish_reason
            if calls:
                delta, finish = calls.end(event)
                if delta:
                    yield chunk([chunk_choice(event.index, delta)])
            yield chunk([chunk_choice(event.index, {}, finish)])
        elif isinstance(event, End) and usage_wanted:
            yield chunk([], event.usage)


class _ToolCallDeltas:
    """Stream deltas of a forced tool call, or of an ``auto`` request's output.

    A named function's text IS its arguments: it streams as argument deltas, the first one
    with the call's id and name. ``required`` generates a list of calls, which is only known
    whole: those calls go out in one delta when the choice ends. So does an ``auto`` request's
    output (the engine parses it whole): its content, its calls, or both, in one delta.
    """

    def __init__(self, job: realtime.Submitted) -> None:
        self.job = job
        self.name = structured.streams_arguments(job.body)
        self.texts: dict[int, str] = {}

    def text(self, event: TextDelta) -> dict[str, Any] | None:
        seen = self.texts.get(event.index)
        self.texts[event.index] = (seen or "") + event.text
        if self.name is None:
            return None
        entry: dict[str, Any] = {"index": 0, "function": {"arguments": event.text}}
        if seen is None:
            call_id = structured.call_id(self.job.id, event.index, 0)
            entry = {
                "index": 0,
                "id": call_id,
                "type": "function",
                "function": {"name": self.name, "arguments": event.text},
            }
        return {"tool_calls": [entry]}

    def end(self, event: ChoiceEnd) -> tuple[dict[str, Any] | None, str]:
        text = self.texts.get(event.index, "")
        finish = event.finish_reason
        out = tool_calls.split(self.job.body, text, self.job.id, event.index)
        if out.calls is not None and finish == "stop":
            finish = "tool_calls"
        if self.name is not None:
            return None, finish  # the arguments already went out
        delta: dict[str, Any] = {"content": out.content} if out.content else {}
        if out.calls is not None:
            delta["tool_calls"] = [tool_call(c, k) for k, c in enumerate(out.calls)]
        return (delta or None), finish


FAMILY = serving.Family(CHAT, ids.CHAT, choice_count, _build, _chunks)
