"""Schemas for ``POST /v1/chat/completions``."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from inference_platform.schemas.common import SamplingFields, Stop
from inference_platform.schemas.unsupported import UnsupportedFields

ROLES = ("developer", "system", "user", "assistant", "tool", "function")


class MessageField(fields.Field):
    """One chat message: ``{role, content}`` with text content (a string or text parts)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, dict):
            raise ValidationError("each message must be an object with `role` and `content`.")
        role = value.get("role")
        if role not in ROLES:
            raise ValidationError(f"`role` must be one of {', '.join(ROLES)}; got {role!r}.")
        content = value.get("content")
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


class ChatCompletionPostSchema(SamplingFields, UnsupportedFields):
    messages = fields.List(MessageField(), required=True, validate=validate.Length(min=1))
    max_tokens = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    max_completion_tokens = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    n = fields.Integer(allow_none=True, load_default=1, validate=validate.Range(min=1, max=128))
    stop = Stop(allow_none=True)
    reasoning_effort = fields.String(allow_none=True)

    @validates_schema
    def _no_reasoning(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("reasoning_effort") not in (None,):
            raise ValidationError(
                {"reasoning_effort": ["`reasoning_effort` is not supported by this server."]}
            )
