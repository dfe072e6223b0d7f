"""The objects ``/v1/messages`` answers with: the ``message``, its stream events, and
Anthropic's error shape.

Every tier produces a ``chat.completion`` (the core's one object for chat work); a ``message``
is built from it, so realtime, flex and batch results read the same. Stream events come from
the event channel as Chat chunks do.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from inference_platform import ids, realtime, structured, tool_calls
from inference_platform.errors import PlatformError
from inference_platform.events import ChoiceEnd, End, Event, TextDelta, Usage

MESSAGE = "msg_"
TOOL_USE = "toolu_"
# ``finish_reason`` -> ``stop_reason``. The engines do not say which stop string matched, so a
# stop sequence reads as ``end_turn``.
_STOP_REASONS = {"length": "max_tokens", "tool_calls": "tool_use"}
# Anthropic's error types by HTTP status (the installed SDK's ErrorObject union).
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
}
# ``usage.service_tier`` by the tier the platform reports.
_USAGE_TIERS = {"default": "standard", "priority": "priority", "flex": "flex", "batch": "batch"}


def error_envelope(status: int, message: str) -> dict[str, Any]:
    """``{"type": "error", "error": {"type", "message"}}``."""
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def anthropic_error(err: PlatformError) -> dict[str, Any]:
    message = err.message
    if err.param and err.status == 400 and err.param not in message:
        message = f"{err.param}: {message}"
    return error_envelope(err.status, message)


def message_id(object_id: str) -> str:
    """``msg_...`` for any id the core gave the work (``chatcmpl-...`` of a batch line)."""
    return MESSAGE + object_id.removeprefix(MESSAGE).removeprefix(ids.CHAT)


def usage(
    prompt_tokens: int, output_tokens: int, cached: int = 0, tier: str = "default"
) -> dict[str, Any]:
    """Anthropic counts prompt tokens read from the cache apart from ``input_tokens``."""
    return {
        "input_tokens": prompt_tokens - cached,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "service_tier": _USAGE_TIERS.get(tier, "standard"),
    }


def text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text, "citations": None}


def tool_use_block(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    try:
        parsed = json.loads(arguments)
    except ValueError:
        parsed = None
    # A model may write arguments that are not an object: they are kept, never dropped.
    value = parsed if isinstance(parsed, dict) else {"arguments": arguments}
    return {
        "type": "tool_use",
        "id": TOOL_USE + call_id.removeprefix("call_"),
        "name": name,
        "input": value,
    }


def _skeleton(object_id: str, model: str) -> dict[str, Any]:
    return {
        "id": message_id(object_id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
    }


def from_completion(completion: Mapping[str, Any], tier: str | None = None) -> dict[str, Any]:
    """The ``message`` for a ``chat.completion`` (one choice), in any tier."""
    choice = completion["choices"][0]
    reply = choice["message"]
    content = [
        tool_use_block(c["id"], c["function"]["name"], c["function"]["arguments"])
        for c in reply.get("tool_calls") or ()
    ]
    if reply.get("content") or not content:
        content.insert(0, text_block(reply.get("content") or ""))
    used = completion["usage"]
    cached = int((used.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    return {
        **_skeleton(completion["id"], completion["model"]),
        "content": content,
        "stop_reason": _STOP_REASONS.get(choice["finish_reason"], "end_turn"),
        "usage": usage(
            used["prompt_tokens"],
            used["completion_tokens"],
            cached,
            tier or completion.get("service_tier") or "default",
        ),
    }


# -- stream ---------------------------------------------------------------------------------

StreamEvent = tuple[str, dict[str, Any]]


def _block_events(index: int, block: dict[str, Any], delta: dict[str, Any]) -> list[StreamEvent]:
    return [
        (
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": block},
        ),
        ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}),
        ("content_block_stop", {"type": "content_block_stop", "index": index}),
    ]


class MessageStream:
    """Anthropic's event sequence for one streamed request: ``message_start``, content
    blocks, ``message_delta`` with the stop reason and usage, ``message_stop``.

    Text streams as it comes, and so does a call to a named tool (its text IS the call's
    input, sent as ``input_json_delta``). Output that must be parsed whole (``any`` and
    ``auto`` with tools) goes out as blocks when the choice ends, as Chat streams it.
    """

    def __init__(self, job: realtime.Submitted) -> None:
        self.job = job
        named = structured.streams_arguments(job.body)
        forced = structured.tool_mode(job.body) or tool_calls.parses_auto(job.body)
        self.live: dict[str, Any] | None = text_block("")
        if named is not None:
            call = structured.call_id(job.id, 0, 0)
            self.live = {**tool_use_block(call, named, "{}"), "input": {}}
        elif forced:
            self.live = None  # parsed whole at the end
        self.text = ""
        self.open = False
        self.started = False
        self.stop_reason = "end_turn"
        self.cached = 0

    def events(self, events: Iterator[Event]) -> Iterator[StreamEvent]:
        try:
            for event in events:
                yield from self._start(event)
                yield from self._feed(event)
        except PlatformError as err:  # after the headers went out: an ``error`` event
            yield "error", anthropic_error(err)

    def _start(self, event: Event) -> Iterator[StreamEvent]:
        if self.started:
            return
        self.started = True
        prompt_tokens = getattr(event, "prompt_tokens", None) or 0
        self.cached = getattr(event, "cached_tokens", None) or 0
        message = {
            **_skeleton(self.job.id, self.job.model),
            "usage": usage(prompt_tokens, 0, self.cached, self.job.service_tier),
        }
        yield "message_start", {"type": "message_start", "message": message}
        yield "ping", {"type": "ping"}

    def _feed(self, event: Event) -> Iterator[StreamEvent]:
        if isinstance(event, TextDelta) and event.index == 0:
            self.text += event.text
            if self.live is None or not event.text:
                return
            if not self.open:
                self.open = True
                start = {"type": "content_block_start", "index": 0, "content_block": self.live}
                yield "content_block_start", start
            if self.live["type"] == "text":
                delta = {"type": "text_delta", "text": event.text}
            else:
                delta = {"type": "input_json_delta", "partial_json": event.text}
            yield "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
        elif isinstance(event, ChoiceEnd) and event.index == 0:
            yield from self._close(event.finish_reason)
        elif isinstance(event, End):
            yield from self._end(event.usage)

    def _close(self, finish: str) -> Iterator[StreamEvent]:
        self.stop_reason = _STOP_REASONS.get(finish, "end_turn")
        if self.live is not None:
            if not self.open:  # nothing generated: still one (empty) block
                empty = {"type": "text_delta", "text": ""}
                if self.live["type"] != "text":
                    empty = {"type": "input_json_delta", "partial_json": ""}
                yield from _block_events(0, self.live, empty)
            else:
                yield "content_block_stop", {"type": "content_block_stop", "index": 0}
            if self.live["type"] == "tool_use" and finish == "stop":
                self.stop_reason = "tool_use"
            return
        blocks = 0
        out = tool_calls.split(self.job.body, self.text, self.job.id)
        if out.content or not out.calls:
            delta = {"type": "text_delta", "text": out.content or ""}
            yield from _block_events(blocks, text_block(""), delta)
            blocks += 1
        for call in out.calls or ():
            block = {**tool_use_block(call.id, call.name, "{}"), "input": {}}
            delta = {"type": "input_json_delta", "partial_json": call.arguments}
            yield from _block_events(blocks, block, delta)
            blocks += 1
        if out.calls:
            self.stop_reason = "tool_use"

    def _end(self, used: Usage) -> Iterator[StreamEvent]:
        cached = getattr(used, "cached_tokens", 0) or self.cached
        final = usage(used.prompt_tokens, used.completion_tokens, cached, self.job.service_tier)
        yield (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": self.stop_reason, "stop_sequence": None},
                "usage": {
                    k: final[k]
                    for k in ("input_tokens", "output_tokens", "cache_read_input_tokens")
                },
            },
        )
        yield "message_stop", {"type": "message_stop"}


__all__ = [
    "MessageStream",
    "anthropic_error",
    "error_envelope",
    "from_completion",
    "message_id",
    "usage",
]
