"""What every endpoint family shares on the wire: request loading, the sampling fields,
usage and list objects, and the stream items a serving function hands to the API.

Marshmallow errors become a 400 that names the offending param, as OpenAI does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from marshmallow import Schema, ValidationError, fields, validate

from inference_platform.errors import invalid
from inference_platform.events import Usage
from inference_platform.tiers import SERVICE_TIERS

SYSTEM_FINGERPRINT = "fp_inference_platform"

# The stream's last data line in Chat Completions and Completions.
DONE: Literal["[DONE]"] = "[DONE]"
# Not an event: an SSE comment a quiet Responses stream sends now and then.
KEEPALIVE = "keepalive"
# One server-sent event, ready to encode: a data-only payload (Chat Completions,
# Completions), a named ``(event, payload)`` (Responses; KEEPALIVE for a comment), or DONE.
StreamItem = Mapping[str, Any] | tuple[str, dict[str, Any]] | Literal["[DONE]"]


@dataclass
class Streamed:
    """A streamed answer: its events, and what to do when the client leaves early."""

    events: Iterator[StreamItem]
    # Runs only if the client goes away mid-stream, to abort the work behind it.
    on_close: Callable[[], None] | None = None


def load(schema: Schema, data: Any) -> dict[str, Any]:
    """``data`` validated by ``schema``, or a 400 naming the first offending param."""
    try:
        loaded: dict[str, Any] = schema.load(data)
    except ValidationError as exc:
        param, message = _first_error(exc.messages)
        if message == "Unknown field.":
            raise invalid(f"Unrecognized request argument supplied: {param}", param) from None
        raise invalid(f"Invalid value for '{param}': {message}", param) from None
    return loaded


def _first_error(messages: Any, prefix: str = "") -> tuple[str, str]:
    if isinstance(messages, dict):
        key, value = next(iter(messages.items()))
        if key == "_schema":
            return _first_error(value, prefix)
        if isinstance(key, int):
            name = f"{prefix}[{key}]"
        else:
            name = f"{prefix}.{key}" if prefix else str(key)
        return _first_error(value, name)
    if isinstance(messages, list) and messages:
        return _first_error(messages[0], prefix)
    return prefix or "body", str(messages)


def described(text: str) -> dict[str, str]:
    """Field metadata; the descriptions feed the OpenAPI document."""
    return {"description": text}


class Stop(fields.Field[str | list[str] | None]):
    """``stop``: a string or a list of up to 4 strings."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        if (
            isinstance(value, list)
            and len(value) <= 4
            and all(isinstance(v, str) and v for v in value)
        ):
            return value
        raise ValidationError("must be a string or a list of up to 4 non-empty strings.")


class StreamOptionsSchema(Schema):
    include_usage = fields.Boolean(
        load_default=False, metadata=described("Send a last chunk with the request's usage.")
    )
    include_obfuscation = fields.Boolean(
        metadata=described("Accepted for compatibility; streams are never obfuscated.")
    )


class SamplingFields(Schema):
    """Fields every generation endpoint shares."""

    model = fields.String(
        required=True, validate=validate.Length(min=1), metadata=described("A catalog model.")
    )
    temperature = fields.Float(
        allow_none=True,
        validate=validate.Range(min=0, max=2),
        metadata=described("Sampling temperature, 0 to 2 (default 1)."),
    )
    top_p = fields.Float(
        allow_none=True,
        validate=validate.Range(min=0, max=1),
        metadata=described("Nucleus sampling mass, 0 to 1 (default 1)."),
    )
    seed = fields.Integer(
        allow_none=True, metadata=described("Seed for reproducible sampling (choice j uses +j).")
    )
    stream = fields.Boolean(
        allow_none=True, load_default=False, metadata=described("Stream server-sent events.")
    )
    stream_options = fields.Nested(
        StreamOptionsSchema, allow_none=True, metadata=described("Options of a stream.")
    )
    service_tier = fields.String(
        allow_none=True,
        validate=validate.OneOf(SERVICE_TIERS),
        metadata=described("`flex` runs on the flex queue; any other value in realtime."),
    )
    user = fields.String(allow_none=True, metadata=described("An end-user id; kept, not used."))
    metadata = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        allow_none=True,
        metadata=described("String pairs kept with the request."),
    )
    store = fields.Boolean(allow_none=True, metadata=described("Keep the result for retrieval."))
    safety_identifier = fields.String(
        allow_none=True, metadata=described("An end-user id; kept, not used.")
    )
    prompt_cache_key = fields.String(
        allow_none=True, metadata=described("Accepted; prefix caching is the engine's own.")
    )
    # Extension (as in vLLM): generate exactly max_tokens, for benchmarks.
    ignore_eos = fields.Boolean(
        load_default=False,
        metadata=described("Extension: keep generating past end-of-text, up to the limit."),
    )


def include_usage(body: Mapping[str, Any]) -> bool:
    """Whether a streamed request asked for a last chunk with its usage."""
    return bool((body.get("stream_options") or {}).get("include_usage"))


class CompletionUsage(TypedDict):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: dict[str, int]
    completion_tokens_details: dict[str, int]


def completion_usage(usage: Usage) -> CompletionUsage:
    """``usage`` of Chat Completions and Completions objects."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


class Page(TypedDict):
    """A cursor page (``GET`` of files, batches, input items)."""

    object: Literal["list"]
    data: list[Any]
    first_id: str | None
    last_id: str | None
    has_more: bool


def page(data: list[Any], has_more: bool = False) -> Page:
    """A page of objects that each carry an ``id``."""
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }
