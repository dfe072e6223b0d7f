"""Request fields of structured outputs, tool calling and extra sampling controls, shared by
the Chat Completions, Completions and Responses schemas.

Shapes are checked here so a malformed tool or schema gets a 400 naming it, never an engine
error later. ``tool_choice: "auto"`` (the default with tools) needs a tool-call parser for the
model's own format: models whose catalog entry names one serve it, others refuse it with a 400
(``tool_calls``); ``required`` and a named function are forced through structured outputs and
work for every model on the vllm engine.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from inference_platform.endpoints.protocol import Int, StrictBoolean, described

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _schema_object(value: Any, what: str) -> None:
    if value is not None and not isinstance(value, Mapping):
        raise ValidationError(f"{what} must be a JSON schema object.")


def check_function(fn: Any) -> str:
    """A function definition's name, after checking its shape."""
    if not isinstance(fn, Mapping):
        raise ValidationError("a function tool needs a `function` object.")
    name = fn.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError("a function's `name` must be 1-64 letters, digits, _ or -.")
    _schema_object(fn.get("parameters"), "`parameters`")
    if fn.get("description") is not None and not isinstance(fn.get("description"), str):
        raise ValidationError("a function's `description` must be a string.")
    return name


class ToolsField(fields.Field[list[dict[str, Any]]]):
    """``tools``: function tools only; ``flat`` is the Responses shape (no ``function``)."""

    def __init__(self, *, flat: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.flat = flat

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, list):
            raise ValidationError("must be a list of tools.")
        names = []
        for index, tool in enumerate(value):
            if not isinstance(tool, Mapping) or tool.get("type") != "function":
                kind = tool.get("type") if isinstance(tool, Mapping) else None
                raise ValidationError(
                    {index: [f"only function tools are supported; got {kind!r}."]}
                )
            try:
                fn = tool if self.flat else tool.get("function")
                names.append(check_function(fn))
            except ValidationError as exc:
                raise ValidationError({index: exc.messages}) from None
        if len(set(names)) != len(names):
            raise ValidationError("function names must be unique.")
        return value


class ToolChoiceField(fields.Field[str | dict[str, Any]]):
    """``tool_choice``: ``none``, ``auto``, ``required``, or one named function."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if value in ("none", "auto", "required"):
            return value
        if isinstance(value, Mapping) and value.get("type") == "function":
            inner = value.get("function")
            name = (inner if isinstance(inner, Mapping) else value).get("name")
            if isinstance(name, str):
                return value
        raise ValidationError(
            '"none", "auto", "required" or {"type": "function", "function": {"name": ...}}.'
        )


def check_tool_choice(data: Mapping[str, Any]) -> None:
    """The choice must fit the tools: a named function among them, required with some."""
    choice = data.get("tool_choice")
    tools = data.get("tools") or []
    if choice in (None, "none", "auto"):
        return
    names = {(t.get("function") or t).get("name") for t in tools}
    if not names:
        raise ValidationError({"tool_choice": ["a forced tool call needs `tools`."]})
    if isinstance(choice, Mapping):
        inner = choice.get("function")
        name = (inner if isinstance(inner, Mapping) else choice).get("name")
        if name not in names:
            raise ValidationError({"tool_choice": [f"no tool named {name!r} in `tools`."]})


class ResponseFormatField(fields.Field[dict[str, Any]]):
    """Chat ``response_format`` (``flat=False``: the schema under ``json_schema``) or
    Responses ``text.format`` (``flat=True``)."""

    def __init__(self, *, flat: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.flat = flat

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        kind = value.get("type") if isinstance(value, Mapping) else None
        if kind in ("text", "json_object"):
            return value
        if kind != "json_schema":
            raise ValidationError('`type` must be "text", "json_object" or "json_schema".')
        spec = value if self.flat else value.get("json_schema")
        if not isinstance(spec, Mapping):
            raise ValidationError("`json_schema` must be an object with `name` and `schema`.")
        name = spec.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValidationError("`name` must be 1-64 letters, digits, _ or -.")
        _schema_object(spec.get("schema"), "`schema`")
        if spec.get("strict") is not None and not isinstance(spec.get("strict"), bool):
            raise ValidationError("`strict` must be a boolean.")
        return value


class TextSchema(Schema):
    """Responses ``text``: its output format."""

    format = ResponseFormatField(
        flat=True, metadata=described("`text`, `json_object`, or `json_schema` (flat).")
    )


def _bias(value: Any) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(k, str) and k.isdigit() and isinstance(v, int | float) and -100 <= v <= 100
        for k, v in value.items()
    )


class PenaltyFields(Schema):
    """OpenAI's penalties and logit bias, and vLLM's extra sampling controls (sent by the
    SDK through ``extra_body``)."""

    presence_penalty = fields.Float(
        allow_none=True,
        validate=validate.Range(min=-2, max=2),
        metadata=described("Penalty, -2 to 2, for tokens already present (vllm engine)."),
    )
    frequency_penalty = fields.Float(
        allow_none=True,
        validate=validate.Range(min=-2, max=2),
        metadata=described("Penalty, -2 to 2, by how often a token appeared (vllm engine)."),
    )
    logit_bias = fields.Dict(
        allow_none=True,
        metadata=described("Token id (as a string) -> bias from -100 to 100 (vllm engine)."),
    )
    repetition_penalty = fields.Float(
        allow_none=True,
        validate=validate.Range(min=0, min_inclusive=False, max=2),
        metadata=described("Extension (vLLM): multiplicative penalty on repeated tokens."),
    )
    top_k = Int(
        allow_none=True,
        validate=validate.Range(min=-1, max=1_000_000),
        metadata=described("Extension (vLLM): sample from the k likeliest tokens (0: all)."),
    )
    min_p = fields.Float(
        allow_none=True,
        validate=validate.Range(min=0, max=1),
        metadata=described("Extension (vLLM): drop tokens below this share of the likeliest."),
    )
    min_tokens = Int(
        allow_none=True,
        validate=validate.Range(min=0, max=2**31 - 1),
        metadata=described("Extension (vLLM): generate at least this many tokens."),
    )

    @validates_schema
    def _check_bias(self, data: dict[str, Any], **_: Any) -> None:
        bias = data.get("logit_bias")
        if bias is not None and not _bias(bias):
            raise ValidationError(
                {"logit_bias": ["keys must be token ids and values -100 to 100."]}
            )


class ToolFields(Schema):
    """Chat Completions tool calling."""

    tools = ToolsField(allow_none=True, metadata=described("Function tools the model may call."))
    tool_choice = ToolChoiceField(
        allow_none=True,
        metadata=described(
            '"none", "auto" (models with a tool parser), "required" or a named function.'
        ),
    )
    parallel_tool_calls = StrictBoolean(
        allow_none=True,
        metadata=described("With `required`, allow several calls in one turn (default true)."),
    )

    @validates_schema
    def _check_choice(self, data: dict[str, Any], **_: Any) -> None:
        check_tool_choice(data)


class ResponseToolFields(ToolFields):
    """Responses tool calling: the same fields, with functions in the flat Responses shape."""

    tools = ToolsField(
        flat=True, allow_none=True, metadata=described("Function tools the model may call.")
    )
    tool_choice = ToolChoiceField(
        allow_none=True,
        metadata=described(
            '"none", "auto" (models with a tool parser), "required" or '
            '{"type": "function", "name": ...} (vllm engine).'
        ),
    )
