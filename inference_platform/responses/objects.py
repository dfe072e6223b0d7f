"""Builders for the Response object and its output message, as the OpenAI SDK reads them."""

from __future__ import annotations

import time
from typing import Any

from inference_platform import ids
from inference_platform.tiers import reported_tier

# Statuses a client sees; anything else is still running.
FINAL = ("completed", "incomplete", "failed", "cancelled")
RUNNING = ("queued", "in_progress")


def message_id(response_id: str) -> str:
    """The id of a response's output message, derived from the response id so every path
    (live stream, replay, stored object, retried attempt) names it the same."""
    return ids.MESSAGE + response_id.removeprefix(ids.RESPONSE)


def output_text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def output_message(response_id: str, text: str, status: str) -> dict[str, Any]:
    """The assistant ``message`` output item; ``status`` is in_progress|completed|incomplete."""
    return {
        "id": message_id(response_id),
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [output_text_part(text)],
    }


def usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def response(
    *,
    id: str,
    created_at: int,
    body: dict[str, Any],
    status: str,
    output: list[dict[str, Any]] | None = None,
    usage: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    incomplete_reason: str | None = None,
    completed_at: int | None = None,
) -> dict[str, Any]:
    """A ``response`` object with every field the reference lists (nulls where nullable).

    ``body`` is the validated request; the echoed settings come from it.
    """
    temperature = body.get("temperature")
    top_p = body.get("top_p")
    return {
        "id": id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": bool(body.get("background")),
        "completed_at": completed_at,
        "error": error,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": None,
        "model": body["model"],
        "output": output or [],
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": reported_tier(body.get("service_tier")),
        "store": body.get("store") is not False,
        "temperature": 1.0 if temperature is None else temperature,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_logprobs": 0,
        "top_p": 1.0 if top_p is None else top_p,
        "truncation": "disabled",
        "usage": usage,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def finished(
    *,
    id: str,
    created_at: int,
    body: dict[str, Any],
    status: str,
    text: str | None,
    input_tokens: int | None,
    output_tokens: int | None,
    finish_reason: str | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A response that reached a final state.

    ``status`` is the outcome of generation (completed, cancelled, failed); a completed
    response cut short by the client's ``max_output_tokens`` becomes ``incomplete``, as
    OpenAI reports it. A limit the server chose is not the client's and does not count.
    """
    reason = None
    if status == "completed" and finish_reason == "length" and body.get("max_output_tokens"):
        status, reason = "incomplete", "max_output_tokens"
    item_status = "completed" if status == "completed" else "incomplete"
    output = [output_message(id, text, item_status)] if text is not None else []
    counted = input_tokens is not None and output_tokens is not None
    return response(
        id=id,
        created_at=created_at,
        body=body,
        status=status,
        output=output,
        usage=usage(input_tokens or 0, output_tokens or 0) if counted else None,
        error=error,
        incomplete_reason=reason,
        completed_at=int(time.time()) if status == "completed" else None,
    )


def response_error(status_code: int | None, message: str) -> dict[str, str]:
    """The Response's ``error``: its ``code`` must be one of OpenAI's enum values."""
    code = "invalid_prompt" if status_code and 400 <= status_code < 500 else "server_error"
    return {"code": code, "message": message}


def deleted(response_id: str) -> dict[str, Any]:
    return {"id": response_id, "object": "response", "deleted": True}
