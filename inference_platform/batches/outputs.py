"""What a finished batch line records: the endpoint's response body, or an error envelope.

The JSONL line around it (``{id, custom_id, response: {status_code, request_id, body}, error}``)
is assembled by ``files.results`` from the request row.
"""

from __future__ import annotations

from typing import Any

from inference_platform import ids
from inference_platform.errors import PlatformError
from inference_platform.generation import (
    CHAT,
    COMPLETIONS,
    RESPONSES,
    GenerationResult,
    error_event,
)
from inference_platform.openai.endpoint import completion_object
from inference_platform.responses import inputs, objects

# Batch results report the tier they were served in the way OpenAI's do.
SERVICE_TIER = "default"


ENDPOINTS = (CHAT, COMPLETIONS, RESPONSES)


def prepare(endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    """The body ``generation.plan`` expects: Responses ``input`` becomes chat messages."""
    if endpoint != RESPONSES:
        return body
    turns = inputs.history(inputs.input_items(body["input"]))
    return {**body, "_messages": inputs.messages(body.get("instructions"), turns)}


def success_body(
    endpoint: str,
    line_id: str,
    model: str,
    body: dict[str, Any],
    result: GenerationResult,
    created: int,
) -> dict[str, Any]:
    """The endpoint's response object for a line that generated successfully."""
    suffix = line_id.removeprefix(ids.BATCH_REQUEST)
    pairs = [(c.text, c.finish_reason) for c in result.choices]
    if endpoint in (CHAT, COMPLETIONS):
        return completion_object(
            endpoint,
            id=(ids.CHAT if endpoint == CHAT else ids.COMPLETION) + suffix,
            created=created,
            model=model,
            body=body,
            choices=pairs,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            service_tier=SERVICE_TIER,
        )
    text, finish = pairs[0]
    return objects.finished(
        id=ids.RESPONSE + suffix,
        created_at=created,
        body={**body, "model": model},
        status="completed",
        text=text,
        input_tokens=result.prompt_tokens,
        output_tokens=result.completion_tokens,
        finish_reason=finish,
    )


def error_body(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """``(status_code, {"error": {...}})`` for a line whose request failed."""
    if isinstance(exc, PlatformError):
        return exc.status, exc.envelope()
    event = error_event(exc)
    err = PlatformError(event.status, event.message, code=event.code, param=event.param)
    return err.status, err.envelope()
