"""``/v1/responses``: the request schemas, and the ``response`` object and its output items
(the assistant message, function calls), as the OpenAI SDK reads them."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from inference_platform import ids, tool_calls
from inference_platform.endpoints.protocol import (
    SamplingFields,
    StrictBoolean,
    described,
    token_limit,
)
from inference_platform.endpoints.refusals import RefusesUnsupported
from inference_platform.endpoints.tooling import ResponseToolFields, TextSchema
from inference_platform.generation import RESPONSES
from inference_platform.structured import ToolCall
from inference_platform.tiers import reported_tier

# A ``response`` object as stored and returned (its keys are those ``response`` builds).
ResponseObject = dict[str, Any]

ROLES = ("user", "assistant", "system", "developer")
TEXT_PARTS = ("input_text", "output_text")
ITEM_KEYS = frozenset({"type", "role", "content", "id", "status"})
# Function calls a client sends back (as it got them), and the results of running them.
CALL_KEYS = frozenset({"type", "id", "call_id", "name", "arguments", "status"})
CALL_OUTPUT_KEYS = frozenset({"type", "id", "call_id", "output", "status"})
FUNCTION_CALL_ID = "fc_"


def _check_parts(content: list[Any]) -> None:
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in TEXT_PARTS:
            raise ValidationError(
                {
                    "content": {
                        index: [
                            f"only text parts (input_text, output_text) are supported "
                            f"by this server; got {kind!r}."
                        ]
                    }
                }
            )
        if not isinstance(part.get("text"), str):
            raise ValidationError({"content": {index: ["a text part needs a string `text`."]}})


def _check_strings(item: dict[str, Any], keys: frozenset[str], names: tuple[str, ...]) -> None:
    unknown = set(item) - keys
    if unknown:
        raise ValidationError(
            f"unknown keys in a {item['type']} item: {', '.join(sorted(unknown))}."
        )
    for name in names:
        if not isinstance(item.get(name), str) or not item[name]:
            raise ValidationError({name: [f"a {item['type']} item needs a string `{name}`."]})


def _check_call_output(item: dict[str, Any]) -> None:
    _check_strings(item, CALL_OUTPUT_KEYS, ("call_id",))
    output = item.get("output")
    if isinstance(output, list):
        _check_parts(output)
    elif not isinstance(output, str):
        raise ValidationError({"output": ["must be a string or a list of text parts."]})


def _check_item(item: Any) -> None:
    if not isinstance(item, dict):
        raise ValidationError("each input item must be an object.")
    kind = item.get("type", "message")
    if kind == "function_call":
        _check_strings(item, CALL_KEYS, ("call_id", "name", "arguments"))
        return
    if kind == "function_call_output":
        _check_call_output(item)
        return
    if kind != "message":
        raise ValidationError(
            f"input items of type {kind!r} are not supported by this server; send messages, "
            "function_call and function_call_output items."
        )
    unknown = set(item) - ITEM_KEYS
    if unknown:
        raise ValidationError(f"unknown keys in a message item: {', '.join(sorted(unknown))}.")
    if item.get("role") not in ROLES:
        raise ValidationError(
            f"`role` must be one of {', '.join(ROLES)}; got {item.get('role')!r}."
        )
    content = item.get("content")
    if isinstance(content, list):
        _check_parts(content)
    elif not isinstance(content, str):
        raise ValidationError("`content` must be a string or a list of text parts.")


class InputField(fields.Field[str | list[dict[str, Any]]]):
    """``input``: a string, or a non-empty list of message items with text content,
    function calls and their outputs."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return value
        if not isinstance(value, list) or not value:
            raise ValidationError("must be a string or a non-empty list of input items.")
        for index, item in enumerate(value):
            try:
                _check_item(item)
            except ValidationError as exc:
                raise ValidationError({index: exc.messages}) from None
        return value


class ConversationField(fields.Field[dict[str, str]]):
    """``conversation``: an id, or ``{"id": ...}``; loaded as ``{"id": ...}``."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        found = value.get("id") if isinstance(value, dict) else value
        if not isinstance(found, str) or not found:
            raise ValidationError('must be a conversation id or {"id": "conv_..."}.')
        return {"id": found}


class ResponseCreateRequestSchema(SamplingFields, ResponseToolFields, RefusesUnsupported):
    endpoint = RESPONSES

    input = InputField(
        required=True,
        metadata=described(
            "A string, or items: messages with text content, function_call and "
            "function_call_output."
        ),
    )
    instructions = fields.String(
        allow_none=True,
        metadata=described("A system message first; not carried over by continuations."),
    )
    max_output_tokens = token_limit(
        "Most tokens to generate; reaching it makes the response incomplete."
    )
    background = StrictBoolean(
        allow_none=True,
        load_default=False,
        metadata=described("Return at once with status `queued`; poll or stream it by id."),
    )
    previous_response_id = fields.String(
        allow_none=True,
        validate=validate.Length(min=1),
        metadata=described("Continue the conversation of this stored response."),
    )
    text = fields.Nested(
        TextSchema,
        allow_none=True,
        metadata=described("Output format: `json_schema` or `json_object` (vllm engine)."),
    )
    conversation = ConversationField(
        allow_none=True,
        metadata=described(
            "Continue this conversation: its items come first, and this response's input and "
            "output join it when it ends."
        ),
    )

    @validates_schema
    def _one_continuation(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("conversation") and data.get("previous_response_id"):
            raise ValidationError(
                {"conversation": ["cannot be used together with `previous_response_id`."]}
            )

    @validates_schema
    def _outputs_answer_calls(self, data: dict[str, Any], **_: Any) -> None:
        """Without an earlier response to continue, a ``function_call_output`` answers a
        ``function_call`` earlier in this input (by ``call_id``), as OpenAI requires."""
        items = data.get("input")
        if not isinstance(items, list) or data.get("previous_response_id"):
            return
        called: set[str] = set()
        for index, item in enumerate(items):
            kind = item.get("type")
            if kind == "function_call":
                called.add(item["call_id"])
            elif kind == "function_call_output" and item["call_id"] not in called:
                message = (
                    f"No tool call found for function call output with call_id {item['call_id']!r}."
                )
                raise ValidationError({"input": {index: {"call_id": [message]}}})


class ResponseRetrieveRequestSchema(RefusesUnsupported):
    """Query of ``GET /v1/responses/{id}``."""

    endpoint = RESPONSES

    stream = fields.Boolean(
        load_default=False, metadata=described("Stream the response's events instead.")
    )
    starting_after = fields.Integer(
        allow_none=True,
        validate=validate.Range(min=-1),
        metadata=described("Resume a stream after this sequence number."),
    )
    include_obfuscation = fields.Boolean(
        metadata=described("Accepted for compatibility; streams are never obfuscated.")
    )


class InputItemListRequestSchema(RefusesUnsupported):
    """Query of ``GET /v1/responses/{id}/input_items``."""

    endpoint = RESPONSES

    after = fields.String(metadata=described("List the items after this item id."))
    limit = fields.Integer(
        load_default=20,
        validate=validate.Range(min=1, max=100),
        metadata=described("Page size, 1 to 100."),
    )
    order = fields.String(
        load_default="desc",
        validate=validate.OneOf(("asc", "desc")),
        metadata=described("`desc` lists the last item first."),
    )


# -- objects -------------------------------------------------------------------------------


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


def function_call_item(call: ToolCall, status: str = "completed") -> dict[str, Any]:
    """A ``function_call`` output item; its id is derived from the call's, which is derived
    from the response id, so every path names it the same."""
    return {
        "id": FUNCTION_CALL_ID + call.id.removeprefix("call_"),
        "type": "function_call",
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments,
        "status": status,
    }


def output_items(response_id: str, body: Mapping[str, Any], text: str, status: str) -> list[Any]:
    """A response's output: the assistant message, and a function_call item per call (a
    forced call's JSON, or what an ``auto`` request's parser found)."""
    out = tool_calls.split(body, text, response_id)
    if out.calls is None:
        return [output_message(response_id, out.content or "", status)]
    items = [output_message(response_id, out.content, status)] if out.content else []
    return items + [function_call_item(c, status) for c in out.calls]


def _echo_tools(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The request's function tools as the Response echoes them (every FunctionTool key)."""
    return [
        {
            "type": "function",
            "name": t["name"],
            "description": t.get("description"),
            "parameters": t.get("parameters"),
            "strict": t.get("strict", True),
        }
        for t in body.get("tools") or ()
    ]


def usage(input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> dict[str, Any]:
    """A Response's ``usage``; ``cached_tokens``: input the engine's prefix cache served."""
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached_tokens, "cache_write_tokens": 0},
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
) -> ResponseObject:
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
        "parallel_tool_calls": body.get("parallel_tool_calls") is not False,
        "previous_response_id": body.get("previous_response_id"),
        "conversation": body.get("conversation"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": reported_tier(body.get("service_tier")),
        "store": body.get("store") is not False,
        "temperature": 1.0 if temperature is None else temperature,
        "text": {"format": (body.get("text") or {}).get("format") or {"type": "text"}},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": _echo_tools(body),
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
    cached_tokens: int = 0,
) -> ResponseObject:
    """A response that reached a final state.

    ``status`` is the outcome of generation (completed, cancelled, failed); a completed
    response cut short by the client's ``max_output_tokens`` becomes ``incomplete``, as
    OpenAI reports it. A limit the server chose is not the client's and does not count.
    """
    reason = None
    if status == "completed" and finish_reason == "length" and body.get("max_output_tokens"):
        status, reason = "incomplete", "max_output_tokens"
    item_status = "completed" if status == "completed" else "incomplete"
    output = output_items(id, body, text, item_status) if text is not None else []
    counted = input_tokens is not None and output_tokens is not None
    return response(
        id=id,
        created_at=created_at,
        body=body,
        status=status,
        output=output,
        usage=usage(input_tokens or 0, output_tokens or 0, cached_tokens) if counted else None,
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
