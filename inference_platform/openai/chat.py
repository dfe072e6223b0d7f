"""Chat Completion objects and stream chunks."""

from __future__ import annotations

from typing import Any

from inference_platform.openai.common import SYSTEM_FINGERPRINT, chat_usage


def message(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text, "refusal": None, "annotations": []}


def completion(
    *,
    id: str,
    created: int,
    model: str,
    choices: list[tuple[str, str | None]],
    prompt_tokens: int,
    completion_tokens: int,
    service_tier: str,
) -> dict[str, Any]:
    """A ``chat.completion``; ``choices`` are ``(text, finish_reason)`` in index order."""
    return {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": i,
                "message": message(text),
                "logprobs": None,
                "finish_reason": finish or "stop",
            }
            for i, (text, finish) in enumerate(choices)
        ],
        "usage": chat_usage(prompt_tokens, completion_tokens),
        "service_tier": service_tier,
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def chunk(
    *,
    id: str,
    created: int,
    model: str,
    service_tier: str,
    choices: list[dict[str, Any]],
    include_usage: bool,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "service_tier": service_tier,
        "choices": choices,
    }
    if include_usage:
        out["usage"] = usage
    return out


def delta_choice(
    index: int, delta: dict[str, Any], finish_reason: str | None = None
) -> dict[str, Any]:
    return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
