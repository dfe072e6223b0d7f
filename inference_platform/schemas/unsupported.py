"""Request fields the OpenAI API has and this server does not implement yet.

They are rejected with a clear 400 instead of being silently ignored.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validates_schema


def _is_default(value: Any) -> bool:
    return value in (None, False, 0, 0.0, [], {}, "auto", "none") or value == {"type": "text"}


class UnsupportedFields(Schema):
    """Mixin: accepts these keys but only with their default values."""

    logprobs = fields.Raw(allow_none=True)
    top_logprobs = fields.Raw(allow_none=True)
    presence_penalty = fields.Raw(allow_none=True)
    frequency_penalty = fields.Raw(allow_none=True)
    logit_bias = fields.Raw(allow_none=True)
    tools = fields.Raw(allow_none=True)
    tool_choice = fields.Raw(allow_none=True)
    parallel_tool_calls = fields.Raw(allow_none=True)
    response_format = fields.Raw(allow_none=True)

    @validates_schema
    def _reject_unsupported(self, data: dict[str, Any], **_: Any) -> None:
        for name in (
            "logprobs", "top_logprobs", "presence_penalty", "frequency_penalty", "logit_bias",
            "tools", "tool_choice", "response_format",
        ):
            if name in data and not _is_default(data[name]):
                raise ValidationError(
                    {name: [f"`{name}` is not supported by this server."]}
                )
        for name in list(data):
            if name in UNSUPPORTED_KEYS:
                data.pop(name)


UNSUPPORTED_KEYS = frozenset(UnsupportedFields._declared_fields)
