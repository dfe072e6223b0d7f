"""Request body of ``POST /v1/responses``."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from inference_platform.schemas.common import SamplingFields
from inference_platform.schemas.unsupported import refuse_non_defaults

ROLES = ("user", "assistant", "system", "developer")
TEXT_PARTS = ("input_text", "output_text")
ITEM_KEYS = frozenset({"type", "role", "content", "id", "status"})


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


def _check_item(item: Any) -> None:
    if not isinstance(item, dict):
        raise ValidationError("each input item must be an object.")
    kind = item.get("type", "message")
    if kind != "message":
        raise ValidationError(
            f"input items of type {kind!r} are not supported by this server; send messages."
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


class InputField(fields.Field):
    """``input``: a string, or a non-empty list of message items with text content."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return value
        if not isinstance(value, list) or not value:
            raise ValidationError("must be a string or a non-empty list of input items.")
        errors = {}
        for index, item in enumerate(value):
            try:
                _check_item(item)
            except ValidationError as exc:
                errors[index] = exc.messages
                break
        if errors:
            raise ValidationError(errors)
        return value


# Accepted only with the value that means "off": anything else is refused, never ignored.
_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "tools": (None, []),
    "tool_choice": (None, "auto", "none"),
    "parallel_tool_calls": (None, True, False),
    "truncation": (None, "disabled", "auto"),
    "include": (None, []),
    "text": (None, {}, {"format": {"type": "text"}}),
    "reasoning": (None, {}, {"effort": None}, {"effort": None, "summary": None}),
    "top_logprobs": (None, 0),
    "max_tool_calls": (None,),
    "conversation": (None,),
    "prompt": (None,),
    "prompt_cache_retention": (None,),
}


class ResponseCreateSchema(SamplingFields):
    input = InputField(required=True)
    instructions = fields.String(allow_none=True)
    max_output_tokens = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    background = fields.Boolean(allow_none=True, load_default=False)
    previous_response_id = fields.String(allow_none=True, validate=validate.Length(min=1))
    tools = fields.Raw(allow_none=True)
    tool_choice = fields.Raw(allow_none=True)
    parallel_tool_calls = fields.Raw(allow_none=True)
    truncation = fields.Raw(allow_none=True)
    include = fields.Raw(allow_none=True)
    text = fields.Raw(allow_none=True)
    reasoning = fields.Raw(allow_none=True)
    top_logprobs = fields.Raw(allow_none=True)
    max_tool_calls = fields.Raw(allow_none=True)
    conversation = fields.Raw(allow_none=True)
    prompt = fields.Raw(allow_none=True)
    prompt_cache_retention = fields.Raw(allow_none=True)

    @validates_schema
    def _only_defaults(self, data: dict[str, Any], **_: Any) -> None:
        refuse_non_defaults(data, _DEFAULTS)
        for name in _DEFAULTS:
            data.pop(name, None)
