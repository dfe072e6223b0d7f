"""The object a Chat Completions or Completions request returns, whichever tier ran it."""

from __future__ import annotations

from typing import Any

from inference_platform.generation import CHAT
from inference_platform.openai import chat, completions


def completion_object(
    endpoint: str,
    *,
    id: str,
    created: int,
    model: str,
    body: dict[str, Any],
    choices: list[tuple[str, str | None]],
    prompt_tokens: int,
    completion_tokens: int,
    service_tier: str,
) -> dict[str, Any]:
    """A ``chat.completion`` for CHAT, else a ``text_completion`` (with ``echo`` applied)."""
    if endpoint == CHAT:
        return chat.completion(
            id=id,
            created=created,
            model=model,
            choices=choices,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            service_tier=service_tier,
        )
    texts = completions.echoed(body, [text for text, _ in choices])
    return completions.completion(
        id=id,
        created=created,
        model=model,
        choices=list(zip(texts, [finish for _, finish in choices], strict=True)),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        service_tier=service_tier,
    )
