"""Request fields the OpenAI API has and this server does not implement yet.

They are rejected with a clear 400 instead of being silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, ValidationError, fields, validates_schema


def refuse_non_defaults(data: Mapping[str, Any], allowed: Mapping[str, tuple[Any, ...]]) -> None:
    """Raise for the first field set to anything but one of the values that mean "off"."""
    for name, values in allowed.items():
        if name in data and data[name] not in values:
            raise ValidationError({name: [f"`{name}` is not supported by this server."]})


# Chat Completions and Completions: the values that leave these features off.
_OFF: tuple[Any, ...] = (None, False, 0, 0.0, [], {}, "auto", "none", {"type": "text"})
_DEFAULTS = {
    name: _OFF
    for name in (
        "logprobs",
        "top_logprobs",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "tools",
        "tool_choice",
        "response_format",
    )
}


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
        refuse_non_defaults(data, _DEFAULTS)
        # Off is off: the engine never needs to see these keys.
        for name in list(data):
            if name in UNSUPPORTED_KEYS:
                data.pop(name)


UNSUPPORTED_KEYS = frozenset(UnsupportedFields._declared_fields)
