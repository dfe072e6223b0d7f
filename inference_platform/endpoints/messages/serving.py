"""Serving ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``.

A Messages request runs as the Chat request it translates to, through the shared serving
of Chat Completions (realtime by default, a flex job with ``service_tier: "flex"``); the
result is rebuilt as a ``message`` and the stream as Anthropic's events.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from inference_platform import realtime
from inference_platform.endpoints import serving
from inference_platform.endpoints.chat_completions import serving as chat
from inference_platform.endpoints.messages import objects, tokens, translate
from inference_platform.endpoints.protocol import DONE, Streamed, StreamItem
from inference_platform.errors import invalid
from inference_platform.events import Event
from inference_platform.generation import CHAT
from inference_platform.platform import Platform


def _chunks(job: realtime.Submitted, events: Iterator[Event]) -> Iterator[Any]:
    return objects.MessageStream(job).events(events)


FAMILY = serving.Family(CHAT, objects.MESSAGE, lambda _body: 1, chat.FAMILY.build, _chunks)


def _anthropic(items: Iterator[StreamItem]) -> Iterator[StreamItem]:
    # Anthropic streams end with ``message_stop`` (or ``error``), never a ``[DONE]`` line.
    return (item for item in items if item != DONE)


def _check_auto(platform: Platform, body: dict[str, Any]) -> None:
    """``auto`` tool use (the default with tools) needs the model's tool-call parser; say so
    in Anthropic's terms before the Chat path says it in OpenAI's."""
    choice = (body.get("tool_choice") or {}).get("type", "auto")
    spec = platform.model(body["model"])
    if body.get("tools") and choice == "auto" and spec.tool_parser is None:
        raise invalid(
            f"`tool_choice` `auto` (the default with `tools`) needs a tool-call parser, and "
            f"the model `{spec.name}` has none configured (catalog `tool_parser`). Use `any` "
            "or `tool`, which are forced through structured outputs, or `none`.",
            param="tool_choice",
        )


def create(platform: Platform, owner: str, body: dict[str, Any]) -> Mapping[str, Any] | Streamed:
    """A ``message``, or its stream of events."""
    _check_auto(platform, body)
    result = serving.create(platform, owner, translate.chat_body(body), FAMILY)
    if isinstance(result, Streamed):
        return Streamed(_anthropic(result.events), result.on_close)
    return objects.from_completion(result)


def count_tokens(platform: Platform, body: dict[str, Any]) -> dict[str, int]:
    """``{"input_tokens": n}`` for the prompt a request with this body would have."""
    spec = platform.model(body["model"])
    spec.check_task(embeddings=False)
    return {"input_tokens": tokens.count(spec, translate.chat_body(body))}
