"""What a finished batch line records: the endpoint's response body, or an error envelope.

The objects come from the endpoint families' protocol modules, as for every other tier. The
JSONL line around them (``{id, custom_id, response: {status_code, request_id, body}, error}``)
is assembled by ``files.results`` from the request row.
"""

from __future__ import annotations

from typing import Any

from inference_platform import ids
from inference_platform.endpoints.chat_completions.protocol import chat_completion
from inference_platform.endpoints.completions.protocol import text_completion
from inference_platform.endpoints.responses import protocol as responses
from inference_platform.endpoints.responses.inputs import Conversation
from inference_platform.errors import PlatformError
from inference_platform.generation import (
    CHAT,
    COMPLETIONS,
    RESPONSES,
    GenerationResult,
    error_event,
)

# Batch results report the tier they were served in the way OpenAI's do.
SERVICE_TIER = "default"


def prepare(endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    """The body ``generation.plan`` expects: a Responses ``input`` resolved to messages."""
    if endpoint != RESPONSES:
        return body
    return Conversation.resolve(body).attach(body)


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
    usage = result.usage()
    if endpoint == CHAT:
        return dict(
            chat_completion(
                id=ids.CHAT + suffix,
                created=created,
                model=model,
                choices=pairs,
                usage=usage,
                service_tier=SERVICE_TIER,
                body=body,  # a forced tool call becomes tool_calls
                logprobs=[c.logprobs for c in result.choices],
            )
        )
    if endpoint == COMPLETIONS:
        return dict(
            text_completion(
                id=ids.COMPLETION + suffix,
                created=created,
                model=model,
                body=body,
                choices=pairs,
                usage=usage,
                service_tier=SERVICE_TIER,
                logprobs=[c.logprobs for c in result.choices],
            )
        )
    text, finish = pairs[0]
    return responses.finished(
        id=ids.RESPONSE + suffix,
        created_at=created,
        body={**body, "model": model},
        status="completed",
        text=text,
        input_tokens=result.prompt_tokens,
        output_tokens=result.completion_tokens,
        cached_tokens=result.cached_tokens,
        finish_reason=finish,
    )


def error_body(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """``(status_code, {"error": {...}})`` for a line whose request failed."""
    if isinstance(exc, PlatformError):
        return exc.status, exc.envelope()
    event = error_event(exc)
    err = PlatformError(event.status, event.message, code=event.code, param=event.param)
    return err.status, err.envelope()
