"""Legacy Completion objects and stream chunks."""

from __future__ import annotations

from typing import Any

from inference_platform.openai.common import SYSTEM_FINGERPRINT, chat_usage


def choice(index: int, text: str, finish_reason: str | None) -> dict[str, Any]:
    return {"text": text, "index": index, "logprobs": None, "finish_reason": finish_reason}


def completion(
    *,
    id: str,
    created: int,
    model: str,
    choices: list[tuple[str, str | None]],
    prompt_tokens: int | None,
    completion_tokens: int | None,
    service_tier: str | None = None,
) -> dict[str, Any]:
    """A ``text_completion``; a stream chunk when the token counts are None."""
    out: dict[str, Any] = {
        "id": id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [choice(i, text, finish) for i, (text, finish) in enumerate(choices)],
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    if prompt_tokens is not None and completion_tokens is not None:
        out["usage"] = chat_usage(prompt_tokens, completion_tokens)
    if service_tier is not None:
        out["service_tier"] = service_tier
    return out


def echoed(body: dict[str, Any], texts: list[str]) -> list[str]:
    """With ``echo``, each choice starts with its prompt (choices are prompt-major)."""
    if not body.get("echo"):
        return texts
    prompts = [body["prompt"]] if isinstance(body["prompt"], str) else body["prompt"]
    n = int(body.get("n") or 1)
    return [prompts[i // n] + text for i, text in enumerate(texts)]
