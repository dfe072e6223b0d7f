"""An Anthropic Messages request as the Chat Completions body the core runs.

Every tier runs Messages through the Chat path (realtime, flex jobs, batch lines), so the
engine sees the same prompt whichever API a client speaks: ``system`` becomes the system
message, ``tool_use`` blocks an assistant turn's ``tool_calls`` and ``tool_result`` blocks
``tool`` turns, as the chat template expects them. The body is loaded by the Chat schema
afterwards, so a batch line written from it passes the batch validator exactly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from inference_platform.endpoints.chat_completions.protocol import (
    ChatCompletionCreateRequestSchema,
)
from inference_platform.endpoints.protocol import load
from inference_platform.tiers import SERVICE_TIERS

_CHAT = ChatCompletionCreateRequestSchema()
# Copied as they are: Anthropic and Chat name them alike.
_SAMPLING = ("max_tokens", "temperature", "top_p", "top_k", "stream")


def block_text(content: str | list[Mapping[str, Any]] | None) -> str:
    """The text of a string or of text blocks."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(str(b.get("text", "")) for b in content if b.get("type") == "text")


def _user_turns(content: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Tool results first (each its own ``tool`` turn), then the user's text."""
    turns: list[dict[str, Any]] = []
    for block in content:
        if block["type"] == "tool_result":
            text = block_text(block.get("content"))
            if block.get("is_error"):
                text = f"Error: {text}"
            turns.append({"role": "tool", "tool_call_id": block["tool_use_id"], "content": text})
    texts = [b for b in content if b["type"] == "text"]
    if texts or not turns:
        turns.append({"role": "user", "content": block_text(texts)})
    return turns


def _assistant_turn(content: list[Mapping[str, Any]]) -> dict[str, Any]:
    turn: dict[str, Any] = {"role": "assistant", "content": block_text(content)}
    calls = [
        {
            "id": b["id"],
            "type": "function",
            "function": {"name": b["name"], "arguments": json.dumps(b["input"])},
        }
        for b in content
        if b["type"] == "tool_use"
    ]
    if calls:
        turn["tool_calls"] = calls
    return turn


def chat_messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``system`` and ``messages`` as Chat messages."""
    out: list[dict[str, Any]] = []
    system = block_text(body.get("system"))
    if system:
        out.append({"role": "system", "content": system})
    for message in body["messages"]:
        content = message["content"]
        if isinstance(content, str):
            out.append({"role": message["role"], "content": content})
        elif message["role"] == "user":
            out.extend(_user_turns(content))
        else:
            out.append(_assistant_turn(content))
    return out


def _tools(body: Mapping[str, Any], out: dict[str, Any]) -> None:
    tools = body.get("tools")
    if not tools:
        return
    out["tools"] = [
        {
            "type": "function",
            "function": {
                k: v
                for k, v in (
                    ("name", t["name"]),
                    ("description", t.get("description")),
                    ("parameters", t["input_schema"]),
                )
                if v is not None
            },
        }
        for t in tools
    ]
    choice = body.get("tool_choice") or {"type": "auto"}
    kind = choice["type"]
    if kind == "tool":
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        out["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
    if choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False


def chat_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The Chat Completions body for a checked Messages body (or a token count's)."""
    out: dict[str, Any] = {"model": body["model"], "messages": chat_messages(body)}
    for key in _SAMPLING:
        if body.get(key) is not None:
            out[key] = body[key]
    if body.get("stop_sequences"):
        out["stop"] = list(body["stop_sequences"])
    tier = body.get("service_tier")
    if tier in SERVICE_TIERS:  # Anthropic's `standard_only` means the default tier
        out["service_tier"] = tier
    user = (body.get("metadata") or {}).get("user_id")
    if user:
        out["user"] = user
    _tools(body, out)
    return load(_CHAT, out)
