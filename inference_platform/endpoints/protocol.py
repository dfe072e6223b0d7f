"""What every endpoint family shares on the wire: request loading, the sampling fields,
usage and list objects, and the stream items a serving function hands to the API.

Marshmallow errors become a 400 that names the offending param, as OpenAI does. Before any
schema sees a body, ``check_json`` refuses what no field could store: text with NUL or lone
surrogates (Postgres rejects both) and nesting deeper than ``MAX_DEPTH``.
"""

from __future__ import annotations

import re
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


# Deepest JSON nesting a request may have; real requests stay far below it, and every
# recursive step after parsing (schemas, JSONB, the engine's templates) stays safe.
MAX_DEPTH = 64
# What Postgres text and JSONB cannot hold: NUL, and UTF-16 surrogates on their own.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Integers the engines take: vLLM's and torch's seeds are 64-bit; token counts fit 32 bits.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_TOKENS_LIMIT = 2**31 - 1


def unstorable(text: str) -> str | None:
    """What is wrong with ``text`` for storage, or None when Postgres can hold it."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (\\u0000), which is not allowed"
    return "contains a lone UTF-16 surrogate, which is not valid Unicode"


def check_json(data: Any, max_depth: int = MAX_DEPTH) -> None:
    """A 400 naming the param whose text cannot be stored or whose nesting is too deep.

    Iterative, so hostile input cannot exhaust the stack of the check itself.
    """
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            problem = unstorable(value)
            if problem:
                raise invalid(f"Invalid value for '{path or 'body'}': {problem}.", path or None)
            continue
        if not isinstance(value, dict | list):
            continue
        if depth >= max_depth:
            raise invalid(
                f"Invalid value for '{path or 'body'}': JSON nested deeper than {max_depth} "
                "levels.",
                path or None,
                code="invalid_json",
            )
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str):
                problem = unstorable(key)
                if problem:
                    raise invalid(f"A key of '{path or 'body'}' {problem}.", path or None)
                name = f"{path}.{key}" if path else key
            else:
                name = f"{path}[{key}]"
            stack.append((item, name, depth + 1))


def load(schema: Schema, data: Any) -> dict[str, Any]:
    """``data`` validated by ``schema``, or a 400 naming the first offending param."""
    check_json(data)
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


class StrictBoolean(fields.Boolean):
    """A JSON ``true`` or ``false``; ``"yes"`` or ``1`` are refused, not read as true."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


def Int(**kwargs: Any) -> fields.Integer:  # noqa: N802 - reads as a field class
    """A JSON integer: ``1.5`` or ``"2"`` are refused, not rounded or parsed."""
    return fields.Integer(strict=True, **kwargs)


def token_limit(text: str, **kwargs: Any) -> fields.Integer:
    """A most-tokens-to-generate field, bounded so no absurd value reaches a queue."""
    return Int(
        allow_none=True,
        validate=validate.Range(min=1, max=MAX_TOKENS_LIMIT),
        metadata=described(text),
        **kwargs,
    )


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
    include_usage = StrictBoolean(
        load_default=False, metadata=described("Send a last chunk with the request's usage.")
    )
    include_obfuscation = StrictBoolean(
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
    seed = Int(
        allow_none=True,
        # Choice j uses seed + j (n is at most 128): every one stays a 64-bit integer.
        validate=validate.Range(min=INT64_MIN, max=INT64_MAX - 128),
        metadata=described("Seed for reproducible sampling (choice j uses +j); 64-bit."),
    )
    stream = StrictBoolean(
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
    store = StrictBoolean(allow_none=True, metadata=described("Keep the result for retrieval."))
    safety_identifier = fields.String(
        allow_none=True, metadata=described("An end-user id; kept, not used.")
    )
    prompt_cache_key = fields.String(
        allow_none=True, metadata=described("Accepted; prefix caching is the engine's own.")
    )
    # Extension (as in vLLM): generate exactly max_tokens, for benchmarks.
    ignore_eos = StrictBoolean(
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
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
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
