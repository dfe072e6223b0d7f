"""Tool calls a model makes on its own: ``tool_choice: "auto"`` (or tools without a choice).

Whether the model called a tool is only known from its own output format (Hermes' ``<tool_call>``
tags, Llama's JSON, ...), so a model serves ``auto`` only when its catalog entry names one of
vLLM's tool-call parsers (``tool_parser``). The worker's engine runs that parser on the whole
generated text and hands back one JSON envelope instead of the raw text::

    {"content": "text before the calls" | null, "tool_calls": [{"name": ..., "arguments": ...}]}

From there it travels like any other output (event channel, jobs, batch lines) and the object
builders split it with ``split``, exactly as a forced call's JSON is split (``structured``).
A stream of an ``auto`` request therefore gets its content or calls when the choice ends.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from inference_platform import structured
from inference_platform.errors import invalid
from inference_platform.structured import ToolCall, call_id

_DEFINITION = ("name", "description", "parameters")


def parses_auto(body: Mapping[str, Any]) -> bool:
    """True when the model decides whether to call one of the request's tools."""
    return bool(structured.functions(body)) and body.get("tool_choice") in (None, "auto")


def parser_tools(body: Mapping[str, Any]) -> str | None:
    """The tools an engine's parser needs (Chat shape, JSON) for an ``auto`` request."""
    if not parses_auto(body):
        return None
    # Only the definition's own keys: Responses' flat tools also carry `type` and `strict`.
    functions = structured.functions(body).values()
    defs = [
        {"type": "function", "function": {k: fn[k] for k in _DEFINITION if k in fn}}
        for fn in functions
    ]
    return json.dumps(defs, sort_keys=True)


def no_parser(model: str) -> str:
    return (
        f"`tool_choice` `auto` (the default when `tools` are given) needs a tool-call parser, "
        f"and the model `{model}` has no tool parser configured (catalog `tool_parser`). Use "
        '"required" or name a function, which are forced through structured outputs, or "none".'
    )


def check_parser(model: str, tool_parser: str | None, body: Mapping[str, Any]) -> None:
    """A 400 naming ``tool_choice`` when ``auto`` reaches a model without a parser."""
    if tool_parser is None and parses_auto(body):
        raise invalid(no_parser(model), param="tool_choice")


def wrap(content: str | None, calls: Sequence[tuple[str, str]]) -> str:
    """The envelope an engine returns for an ``auto`` request: ``calls`` are (name, JSON
    arguments) pairs."""
    return json.dumps(
        {
            "content": content,
            "tool_calls": [{"name": name, "arguments": args} for name, args in calls],
        },
        ensure_ascii=False,
    )


@dataclass(frozen=True)
class Output:
    """One choice's output: its text content, and the tools it called (None: no call)."""

    content: str | None
    calls: list[ToolCall] | None = None


def split(body: Mapping[str, Any], text: str, object_id: str, choice: int = 0) -> Output:
    """The content and calls of a generated text, for every kind of ``tool_choice``."""
    forced = structured.parse_calls(body, text, object_id, choice)
    if forced is not None:
        return Output(None, forced)
    if not parses_auto(body):
        return Output(text)
    envelope = _envelope(text)
    if envelope is None:
        return Output(text)  # not the engine's envelope (e.g. cut short before it was made)
    content, pairs = envelope
    calls = [ToolCall(call_id(object_id, choice, i), n, a) for i, (n, a) in enumerate(pairs)]
    return Output(content, calls or None)


def _envelope(text: str) -> tuple[str | None, list[tuple[str, str]]] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict) or set(value) != {"content", "tool_calls"}:
        return None
    content, raw = value["content"], value["tool_calls"]
    if not (content is None or isinstance(content, str)) or not isinstance(raw, list):
        return None
    pairs = []
    for call in raw:
        if not isinstance(call, dict):
            return None
        name, args = call.get("name"), call.get("arguments")
        if not isinstance(name, str) or not isinstance(args, str):
            return None
        pairs.append((name, args))
    return content, pairs


__all__ = [
    "Output",
    "check_parser",
    "no_parser",
    "parser_tools",
    "parses_auto",
    "split",
    "wrap",
]
