"""A batch line's prompt prefix, as one number to order the batch's claims by.

Lines that share a prefix (a system prompt, a document asked several questions, a tool list)
should run close together, while the engine still holds that prefix in its prefix cache. The
hash is taken at validation from the body, before any template: its high 32 bits hash what
templates put first (the tool definitions and the system or developer messages, or a
Response's ``instructions``), its low 32 bits the first ``LEAD_CHARS`` characters of the rest
(about the first block of tokens). Ordered by this number, a batch's lines come grouped by
system prompt and, within that, by how the rest begins.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from inference_platform.generation import CHAT, COMPLETIONS, RESPONSES, content_text

# How much of the prompt after the system part decides the group: enough to tell documents
# apart, short enough that questions after a shared document do not split its group.
LEAD_CHARS = 512
_SYSTEM_ROLES = ("system", "developer")


def _h32(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _split_messages(messages: list[Any]) -> tuple[str, str]:
    """(system part, the rest) of a list of chat or Responses input messages."""
    system: list[str] = []
    rest: list[str] = []
    for m in messages:
        if not isinstance(m, dict):
            rest.append(_text(m))
            continue
        role = str(m.get("role", "user"))
        text = content_text(m.get("content")) if "content" in m else _text(m)
        # Once a non-system turn was seen, later system turns no longer lead the prompt.
        target = system if role in _SYSTEM_ROLES and not rest else rest
        target.append(f"{role}\x00{text}\x00")
    return "".join(system), "".join(rest)


def parts(endpoint: str, body: dict[str, Any]) -> tuple[str, str] | None:
    """(system part, the rest) of a body's prompt; None for work that is not generated."""
    tools = _text(body["tools"]) if body.get("tools") else ""
    if endpoint == CHAT:
        system, rest = _split_messages(list(body.get("messages") or ()))
        return tools + system, rest
    if endpoint == COMPLETIONS:
        prompt = body.get("prompt")
        first = prompt[0] if isinstance(prompt, list) and prompt else prompt
        return "", _text(first if isinstance(first, str) else prompt)
    if endpoint == RESPONSES:
        given = body.get("input")
        system, rest = _split_messages(given) if isinstance(given, list) else ("", _text(given))
        return tools + _text(body.get("instructions") or "") + system, rest
    return None


def prefix_hash(endpoint: str, body: dict[str, Any]) -> int | None:
    """The line's group as a signed 64-bit number (Postgres ``bigint``); None: no group."""
    found = parts(endpoint, body)
    if found is None:
        return None
    system, rest = found
    value = (_h32(system) << 32) | _h32(rest[:LEAD_CHARS])
    # Signed: values with the same high half stay together under either sign.
    return value - (1 << 64) if value >= 1 << 63 else value
