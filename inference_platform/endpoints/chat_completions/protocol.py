"""``POST /v1/chat/completions``: the request schema, and the ``chat.completion`` and
``chat.completion.chunk`` objects every tier answers with."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, NotRequired, TypedDict

from marshmallow import ValidationError, fields, validate, validates_schema

from inference_platform import structured, tool_calls
from inference_platform.endpoints.logprobs import CHAT_MAX_TOP, ChatLogprobs, chat_logprobs
from inference_platform.endpoints.protocol import (
    SYSTEM_FINGERPRINT,
    CompletionUsage,
    Int,
    SamplingFields,
    Stop,
    StrictBoolean,
    completion_usage,
    described,
    token_limit,
)
from inference_platform.endpoints.refusals import RefusesUnsupported
from inference_platform.endpoints.tooling import PenaltyFields, ResponseFormatField, ToolFields
from inference_platform.engines.base import TokenLogprob
from inference_platform.events import Usage
from inference_platform.generation import CHAT

ROLES = ("developer", "system", "user", "assistant", "tool")
# The deprecated function-calling role: a clear 400, never a request the template refuses.
LEGACY_ROLES = ("function",)


def _check_tool_calls(calls: Any) -> None:
    """An assistant turn's earlier ``tool_calls``, as the client got them from us."""
    if not isinstance(calls, list):
        raise ValidationError({"tool_calls": ["must be a list of tool calls."]})
    for call in calls:
        fn = call.get("function") if isinstance(call, dict) else None
        if (
            not isinstance(fn, dict)
            or not isinstance(fn.get("name"), str)
            or not isinstance(fn.get("arguments"), str)
            or not isinstance(call.get("id"), str)
        ):
            raise ValidationError(
                {"tool_calls": ["each needs `id` and `function` with `name` and `arguments`."]}
            )


class MessageField(fields.Field[dict[str, Any]]):
    """One chat message: ``{role, content}`` with text content (a string or text parts); an
    assistant turn may carry ``tool_calls``, and a ``tool`` turn answers one by id."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, dict):
            raise ValidationError("each message must be an object with `role` and `content`.")
        role = value.get("role")
        if role in LEGACY_ROLES:
            raise ValidationError(
                {"role": [f"`{role}` messages are not supported; use `tool` messages."]}
            )
        if role not in ROLES:
            raise ValidationError(
                {"role": [f"`role` must be one of {', '.join(ROLES)}; got {role!r}."]}
            )
        content = value.get("content")
        if value.get("tool_calls") is not None:
            if role != "assistant":
                raise ValidationError({"tool_calls": ["only assistant messages carry calls."]})
            _check_tool_calls(value["tool_calls"])
        if role == "tool" and not isinstance(value.get("tool_call_id"), str):
            raise ValidationError({"tool_call_id": ["a tool message needs `tool_call_id`."]})
        if content is None and role != "assistant":
            raise ValidationError(f"a {role} message needs `content`.")
        if isinstance(content, list):
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else None
                if kind != "text" or not isinstance(part.get("text"), str):
                    raise ValidationError(
                        'only text content parts ({"type": "text", "text": ...}) are '
                        f"supported; got {kind!r}."
                    )
        elif content is not None and not isinstance(content, str):
            raise ValidationError("`content` must be a string or a list of text parts.")
        return value


class ChatCompletionCreateRequestSchema(
    SamplingFields, PenaltyFields, ToolFields, RefusesUnsupported
):
    endpoint = CHAT

    messages = fields.List(
        MessageField(),
        required=True,
        validate=validate.Length(min=1),
        metadata=described("The conversation so far; text content only."),
    )
    max_tokens = token_limit("Deprecated name of `max_completion_tokens`.")
    max_completion_tokens = token_limit(
        "Most tokens to generate per choice (default: up to the context)."
    )
    n = Int(
        load_default=1,
        validate=validate.Range(min=1, max=128),
        metadata=described("How many choices to generate."),
    )
    stop = Stop(allow_none=True, metadata=described("Up to 4 strings that end generation."))
    response_format = ResponseFormatField(
        allow_none=True,
        metadata=described("`text`, `json_object` or `json_schema` (vllm engine)."),
    )
    logprobs = StrictBoolean(
        allow_none=True,
        metadata=described("Return each generated token's log probability (vllm engine)."),
    )
    top_logprobs = Int(
        allow_none=True,
        validate=validate.Range(min=0, max=CHAT_MAX_TOP),
        metadata=described("With `logprobs`: this many most likely tokens per position, 0-20."),
    )

    @validates_schema
    def _tool_turns_answer_calls(self, data: dict[str, Any], **_: Any) -> None:
        """A ``tool`` message answers a call an earlier assistant message made (by id), as
        OpenAI requires; an orphan would reach the model as a turn it never asked for."""
        called: set[str] = set()
        for index, message in enumerate(data.get("messages") or ()):
            for call in message.get("tool_calls") or ():
                called.add(call["id"])
            if message["role"] == "tool" and message["tool_call_id"] not in called:
                raise ValidationError(
                    {
                        "messages": {
                            index: {
                                "tool_call_id": [
                                    "messages with role 'tool' must be a response to a "
                                    "preceding message with 'tool_calls' (no earlier call has "
                                    f"id {message['tool_call_id']!r})."
                                ]
                            }
                        }
                    }
                )

    @validates_schema
    def _top_needs_logprobs(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("top_logprobs") is not None and data.get("logprobs") is not True:
            raise ValidationError(
                {"top_logprobs": ["`top_logprobs` requires `logprobs` to be true."]}
            )


# -- objects -------------------------------------------------------------------------------


class ChatCompletionMessage(TypedDict):
    role: Literal["assistant"]
    content: str | None
    refusal: None
    annotations: list[Any]
    tool_calls: NotRequired[list[dict[str, Any]]]


class Choice(TypedDict):
    index: int
    message: ChatCompletionMessage
    logprobs: ChatLogprobs | None
    finish_reason: str


class ChatCompletion(TypedDict):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage
    service_tier: str
    system_fingerprint: str


class ChunkChoice(TypedDict):
    index: int
    delta: dict[str, Any]
    logprobs: ChatLogprobs | None
    finish_reason: str | None


class ChatCompletionChunk(TypedDict):
    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    system_fingerprint: str
    service_tier: str
    choices: list[ChunkChoice]
    # Present (null until the last chunk) only when the client asked for usage.
    usage: NotRequired[CompletionUsage | None]


def chat_completion(
    *,
    id: str,
    created: int,
    model: str,
    choices: Sequence[tuple[str, str | None]],
    usage: Usage,
    service_tier: str,
    body: Mapping[str, Any] | None = None,
    logprobs: Sequence[Sequence[TokenLogprob]] = (),
) -> ChatCompletion:
    """A ``chat.completion``; ``choices`` are ``(text, finish_reason)`` in index order.

    ``body`` is the request: when it forced a tool call, the generated text becomes the
    message's ``tool_calls``; when it asked for ``logprobs``, each choice carries its tokens'
    from ``logprobs`` (one sequence per choice).
    """
    wanted = body is not None and body.get("logprobs") is True
    return {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            _choice(
                i,
                text,
                finish,
                id,
                body,
                chat_logprobs(logprobs[i] if i < len(logprobs) else ()) if wanted else None,
            )
            for i, (text, finish) in enumerate(choices)
        ],
        "usage": completion_usage(usage),
        "service_tier": service_tier,
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def _choice(
    index: int,
    text: str,
    finish: str | None,
    id: str,
    body: Mapping[str, Any] | None,
    logprobs: ChatLogprobs | None,
) -> Choice:
    message: ChatCompletionMessage = {
        "role": "assistant",
        "content": text,
        "refusal": None,
        "annotations": [],
    }
    # A forced call's JSON, or the calls an "auto" request's parser found, become tool_calls.
    out = tool_calls.split(body, text, id, index) if body is not None else None
    if out is not None:
        message["content"] = out.content
        if out.calls is not None:
            message["tool_calls"] = [tool_call(c) for c in out.calls]
            if finish in (None, "stop"):
                finish = "tool_calls"
    return {
        "index": index,
        "message": message,
        "logprobs": logprobs,
        "finish_reason": finish or "stop",
    }


def tool_call(call: structured.ToolCall, index: int | None = None) -> dict[str, Any]:
    """A message's tool call; with ``index``, the whole call as one stream delta entry."""
    out: dict[str, Any] = {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }
    return out if index is None else {"index": index, **out}


def chunk_choice(
    index: int,
    delta: dict[str, Any],
    finish_reason: str | None = None,
    logprobs: Sequence[TokenLogprob] | None = None,
) -> ChunkChoice:
    """One choice of a chunk; ``logprobs`` (when asked for) are the tokens of this delta."""
    return {
        "index": index,
        "delta": delta,
        "logprobs": None if logprobs is None else chat_logprobs(logprobs),
        "finish_reason": finish_reason,
    }


def chat_completion_chunk(
    *,
    id: str,
    created: int,
    model: str,
    service_tier: str,
    choices: list[ChunkChoice],
    include_usage: bool,
    usage: Usage | None = None,
) -> ChatCompletionChunk:
    out: ChatCompletionChunk = {
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "service_tier": service_tier,
        "choices": choices,
    }
    if include_usage:
        out["usage"] = None if usage is None else completion_usage(usage)
    return out


def choice_count(body: Mapping[str, Any]) -> int:
    return int(body["n"])
