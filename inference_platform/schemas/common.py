"""Shared pieces of the request-body schemas; marshmallow errors become a 400 that names the
offending param."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from inference_platform.errors import invalid
from inference_platform.tiers import SERVICE_TIERS


def load(schema: Schema, data: Any) -> dict[str, Any]:
    try:
        return schema.load(data)
    except ValidationError as exc:
        param, message = _first_error(exc.messages)
        if message == "Unknown field.":
            raise invalid(f"Unrecognized request argument supplied: {param}", param) from None
        raise invalid(f"Invalid value for '{param}': {message}", param) from None


def _first_error(messages: Any, prefix: str = "") -> tuple[str, str]:
    if isinstance(messages, dict):
        key, value = next(iter(messages.items()))
        if key == "_schema":
            return _first_error(value, prefix)
        name = (
            f"{prefix}[{key}]"
            if isinstance(key, int)
            else (f"{prefix}.{key}" if prefix else str(key))
        )
        return _first_error(value, name)
    if isinstance(messages, list) and messages:
        return _first_error(messages[0], prefix)
    return prefix or "body", str(messages)


class Stop(fields.Field):
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


class StreamOptions(Schema):
    include_usage = fields.Boolean(load_default=False)
    include_obfuscation = fields.Boolean()


class SamplingFields(Schema):
    """Fields every generation endpoint shares."""

    model = fields.String(required=True, validate=validate.Length(min=1))
    temperature = fields.Float(allow_none=True, validate=validate.Range(min=0, max=2))
    top_p = fields.Float(allow_none=True, validate=validate.Range(min=0, max=1))
    seed = fields.Integer(allow_none=True)
    stream = fields.Boolean(allow_none=True, load_default=False)
    stream_options = fields.Nested(StreamOptions, allow_none=True)
    service_tier = fields.String(allow_none=True, validate=validate.OneOf(SERVICE_TIERS))
    user = fields.String(allow_none=True)
    metadata = fields.Dict(keys=fields.String(), values=fields.String(), allow_none=True)
    store = fields.Boolean(allow_none=True)
    safety_identifier = fields.String(allow_none=True)
    prompt_cache_key = fields.String(allow_none=True)
    # Extension (as in vLLM): generate exactly max_tokens, for benchmarks.
    ignore_eos = fields.Boolean(load_default=False)
