"""Chat Completions to Responses and back, for flex mode.

A chat call becomes a background flex Response (durable on the server, polled by id) when
everything it asks for has a Responses equivalent; otherwise ``chat_to_response`` returns None
and the call goes out as a flex Chat Completion unchanged, rather than losing a field.
"""

from __future__ import annotations

from typing import Any

from inference_platform.autobatcher.wire import LineResult

# Chat fields copied as they are, and chat fields that carry nothing when they hold these values.
_SAME = ("model", "temperature", "top_p", "user", "metadata", "safety_identifier", "seed")
_OFF: dict[str, tuple[Any, ...]] = {
    "n": (None, 1),
    "stream": (None, False),
    "service_tier": (None, "auto", "default", "flex"),
    "store": (None, False),
    "stream_options": (None,),
}
_ROLES = ("system", "developer", "user", "assistant")
# Response error codes that a direct call would have answered with a 400.
_CLIENT_ERRORS = ("context_length_exceeded", "invalid_prompt", "invalid_request_error")


def _message(message: Any) -> dict[str, Any] | None:
    if not isinstance(message, dict) or set(message) - {"role", "content"}:
        return None
    role, content = message.get("role"), message.get("content")
    if role not in _ROLES:
        return None
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        return None
    kind = "output_text" if role == "assistant" else "input_text"
    parts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "text" or set(part) - {"type", "text"}:
            return None
        parts.append({"type": kind, "text": part.get("text")})
    return {"role": role, "content": parts}


def chat_to_response(body: dict[str, Any]) -> dict[str, Any] | None:
    """A Responses request body asking for what ``body`` asks, or None if it cannot."""
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key in _SAME:
            if value is not None:
                out[key] = value
        elif key in ("max_tokens", "max_completion_tokens"):
            if value is not None:
                out["max_output_tokens"] = value
        elif key == "messages":
            items = [_message(m) for m in value] if isinstance(value, list) else [None]
            if not items or any(item is None for item in items):
                return None
            out["input"] = items
        elif key not in _OFF or value not in _OFF[key]:
            return None
    return out if "input" in out else None


def _text(response: dict[str, Any]) -> str:
    return "".join(
        part.get("text", "")
        for item in response.get("output") or []
        if item.get("type") == "message"
        for part in item.get("content") or []
        if part.get("type") == "output_text"
    )


def response_to_chat(response: dict[str, Any]) -> LineResult:
    """The chat completion (or error) a direct call would have given for this response."""
    status = response.get("status")
    if status == "failed":
        error = response.get("error") or {}
        code = error.get("code")
        status_code = (
            400 if code in _CLIENT_ERRORS else 429 if code == "rate_limit_exceeded" else 500
        )
        envelope = {
            "message": error.get("message") or "The request failed.",
            "type": "invalid_request_error" if status_code == 400 else "server_error",
            "param": None,
            "code": code,
        }
        return LineResult(status_code, {"error": envelope})
    reason = (response.get("incomplete_details") or {}).get("reason")
    usage = response.get("usage") or {}
    prompt, completion = usage.get("input_tokens", 0), usage.get("output_tokens", 0)
    rid = str(response.get("id", ""))
    body: dict[str, Any] = {
        "id": "chatcmpl-" + rid.removeprefix("resp_"),
        "object": "chat.completion",
        "created": response.get("created_at"),
        "model": response.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": _text(response),
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "length" if reason == "max_output_tokens" else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": usage.get("total_tokens", prompt + completion),
        },
        "service_tier": response.get("service_tier"),
        "system_fingerprint": None,
    }
    return LineResult(200, body)
