"""``/v1/messages`` (Anthropic's Messages API): the request schemas.

Bodies are checked here in Anthropic's terms (``max_tokens``, ``system``, content blocks,
``tools`` with ``input_schema``), so a 400 names the param the client sent. ``translate`` then
turns a checked body into the Chat Completions body the core runs in every tier.

Content is text, ``tool_use`` and ``tool_result`` blocks; images, documents and thinking are
refused with a 400 rather than dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from inference_platform.endpoints.protocol import MAX_TOKENS_LIMIT, Int, StrictBoolean, described
from inference_platform.tiers import SERVICE_TIERS

ROLES = ("user", "assistant")
# Anthropic's own service tiers; both mean realtime here. The platform's tiers (``flex``...)
# are accepted too: that is how an Anthropic client asks for flex.
ANTHROPIC_TIERS = ("auto", "standard_only")
TOOL_CHOICES = ("auto", "any", "tool", "none")
# The chat pipeline (and so batch lines) takes at most 4 stop strings.
MAX_STOP_SEQUENCES = 4
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Keys a block may carry that change nothing here: prompt caching is the engine's own
# (automatic prefix caching), and a text block echoed back from a response has null citations.
_IGNORED = frozenset({"cache_control", "citations", "caller"})
_BLOCK_KEYS = {
    "text": frozenset({"type", "text"}),
    "tool_use": frozenset({"type", "id", "name", "input"}),
    "tool_result": frozenset({"type", "tool_use_id", "content", "is_error"}),
}
_ALLOWED_BLOCKS = {"user": ("text", "tool_result"), "assistant": ("text", "tool_use")}


def _fail(where: int | str, message: str) -> ValidationError:
    return ValidationError({where: [message]})


def _check_keys(block: Mapping[str, Any], kind: str) -> None:
    unknown = set(block) - _BLOCK_KEYS[kind] - _IGNORED
    if unknown:
        raise ValidationError(f"unknown keys in a {kind} block: {', '.join(sorted(unknown))}.")
    if block.get("citations") not in (None, []):
        raise ValidationError("`citations` are not supported by this server.")


def check_text_blocks(value: Any, what: str) -> None:
    """A string, or a list of text blocks (``system``, a tool result's ``content``)."""
    if isinstance(value, str):
        return
    if not isinstance(value, list):
        raise ValidationError(f"{what} must be a string or a list of text blocks.")
    for index, block in enumerate(value):
        if not isinstance(block, Mapping) or block.get("type") != "text":
            kind = block.get("type") if isinstance(block, Mapping) else None
            raise _fail(index, f"only text blocks are supported here; got {kind!r}.")
        try:
            _check_keys(block, "text")
        except ValidationError as exc:
            raise ValidationError({index: exc.messages}) from None
        if not isinstance(block.get("text"), str):
            raise _fail(index, "a text block needs a string `text`.")


def _check_block(block: Any, role: str) -> None:
    kind = block.get("type") if isinstance(block, Mapping) else None
    if kind not in _ALLOWED_BLOCKS[role]:
        allowed = ", ".join(_ALLOWED_BLOCKS[role])
        raise ValidationError(
            f"{role} content blocks of type {kind!r} are not supported by this server; "
            f"send {allowed}."
        )
    _check_keys(block, kind)
    if kind == "text" and not isinstance(block.get("text"), str):
        raise _fail("text", "a text block needs a string `text`.")
    if kind == "tool_use":
        for name in ("id", "name"):
            if not isinstance(block.get(name), str) or not block[name]:
                raise _fail(name, f"a tool_use block needs a string `{name}`.")
        if not isinstance(block.get("input"), Mapping):
            raise _fail("input", "a tool_use block's `input` must be an object.")
    if kind == "tool_result":
        if not isinstance(block.get("tool_use_id"), str) or not block["tool_use_id"]:
            raise _fail("tool_use_id", "a tool_result block needs a string `tool_use_id`.")
        if block.get("content") is not None:
            try:
                check_text_blocks(block["content"], "`content`")
            except ValidationError as exc:
                raise ValidationError({"content": exc.messages}) from None
        if block.get("is_error") not in (None, True, False):
            raise _fail("is_error", "must be a boolean.")


class MessageParamField(fields.Field[dict[str, Any]]):
    """One input message: ``{role, content}``, content a string or a list of blocks."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ValidationError("each message must be an object with `role` and `content`.")
        unknown = set(value) - {"role", "content"}
        if unknown:
            raise ValidationError(f"unknown keys in a message: {', '.join(sorted(unknown))}.")
        role = value.get("role")
        if role not in ROLES:
            raise _fail("role", f"`role` must be `user` or `assistant`; got {role!r}.")
        content = value.get("content")
        if isinstance(content, str):
            return dict(value)
        if not isinstance(content, list):
            raise _fail("content", "must be a string or a list of content blocks.")
        for index, block in enumerate(content):
            try:
                _check_block(block, role)
            except ValidationError as exc:
                raise ValidationError({"content": {index: exc.messages}}) from None
        return dict(value)


class SystemField(fields.Field[str | list[dict[str, Any]]]):
    """``system``: a string or a list of text blocks."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        check_text_blocks(value, "`system`")
        return value


class ToolParamField(fields.Field[dict[str, Any]]):
    """A client tool: ``{name, description?, input_schema}`` (server tools are refused)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ValidationError("each tool must be an object.")
        if value.get("type") not in (None, "custom"):
            raise ValidationError(
                f"tools of type {value.get('type')!r} are not supported by this server; "
                "send client tools with `name` and `input_schema`."
            )
        unknown = set(value) - {"type", "name", "description", "input_schema", "cache_control"}
        if unknown:
            raise ValidationError(f"unknown keys in a tool: {', '.join(sorted(unknown))}.")
        if not isinstance(value.get("name"), str) or not _NAME.match(value["name"]):
            raise _fail("name", "a tool's `name` must be 1-64 letters, digits, _ or -.")
        if value.get("description") is not None and not isinstance(value["description"], str):
            raise _fail("description", "must be a string.")
        schema = value.get("input_schema")
        if not isinstance(schema, Mapping) or schema.get("type") != "object":
            raise _fail("input_schema", 'must be a JSON schema object with "type": "object".')
        return dict(value)


class ToolChoiceSchema(Schema):
    type = fields.String(
        required=True,
        validate=validate.OneOf(TOOL_CHOICES),
        metadata=described("`auto`, `any` (some tool), `tool` (the named one) or `none`."),
    )
    name = fields.String(metadata=described("With `tool`: the tool to call."))
    disable_parallel_tool_use = StrictBoolean(metadata=described("With `any`: at most one call."))


class ThinkingSchema(Schema):
    type = fields.String(
        required=True,
        validate=validate.OneOf(("disabled",), error="extended thinking is not supported."),
        metadata=described("Only `disabled`."),
    )


class MetadataSchema(Schema):
    user_id = fields.String(allow_none=True, metadata=described("An end-user id; kept, not used."))


class MessageInputFields(Schema):
    """What a request and a token count share: the model, the prompt and the tools."""

    model = fields.String(
        required=True, validate=validate.Length(min=1), metadata=described("A catalog model.")
    )
    messages = fields.List(
        MessageParamField(),
        required=True,
        validate=validate.Length(min=1),
        metadata=described("Alternating user and assistant turns: text, tool_use, tool_result."),
    )
    system = SystemField(metadata=described("A system prompt: a string or text blocks."))
    tools = fields.List(ToolParamField(), metadata=described("Client tools the model may use."))
    tool_choice = fields.Nested(ToolChoiceSchema, metadata=described("How tools are used."))
    thinking = fields.Nested(ThinkingSchema, metadata=described("Only `disabled`."))
    cache_control = fields.Dict(
        allow_none=True,
        metadata=described("Accepted; prompt caching is the engine's own (automatic)."),
    )
    speed = fields.String(
        allow_none=True,
        validate=validate.OneOf(("standard",)),
        metadata=described("Only `standard`."),
    )

    @validates_schema
    def _check_tools(self, data: dict[str, Any], **_: Any) -> None:
        names = [t["name"] for t in data.get("tools") or ()]
        if len(set(names)) != len(names):
            raise _fail("tools", "tool names must be unique.")
        choice = data.get("tool_choice") or {}
        if choice.get("type") == "tool":
            if choice.get("name") not in names:
                raise _fail("tool_choice", f"no tool named {choice.get('name')!r} in `tools`.")
        elif choice.get("name") is not None:
            raise _fail("tool_choice", "`name` goes with `type: tool` only.")
        if choice.get("type") in ("any", "tool") and not names:
            raise _fail("tool_choice", "a forced tool call needs `tools`.")

    @validates_schema
    def _check_tool_results(self, data: dict[str, Any], **_: Any) -> None:
        """Every ``tool_result`` answers an earlier ``tool_use``, said in Anthropic's terms
        (the Chat request it becomes would say it in OpenAI's: `tool_call_id`, role `tool`)."""
        used: set[str] = set()
        for i, message in enumerate(data.get("messages") or ()):
            content = message["content"]
            for j, block in enumerate(content if isinstance(content, list) else ()):
                if block["type"] == "tool_use":
                    used.add(block["id"])
                elif block["type"] == "tool_result" and block["tool_use_id"] not in used:
                    raise _fail(
                        f"messages[{i}].content[{j}].tool_use_id",
                        f"unexpected `tool_use_id` found in `tool_result` blocks: "
                        f"{block['tool_use_id']}. Each `tool_result` block must have a "
                        "corresponding `tool_use` block in an earlier message.",
                    )


class MessageCreateRequestSchema(MessageInputFields):
    """``POST /v1/messages``."""

    max_tokens = Int(
        required=True,
        validate=validate.Range(min=1, max=MAX_TOKENS_LIMIT),
        metadata=described("Most tokens to generate."),
    )
    temperature = fields.Float(
        validate=validate.Range(min=0, max=1), metadata=described("Randomness, 0 to 1.")
    )
    top_p = fields.Float(
        validate=validate.Range(min=0, max=1), metadata=described("Nucleus sampling mass.")
    )
    top_k = Int(
        validate=validate.Range(min=0, max=1_000_000),
        metadata=described("Sample from the k likeliest tokens."),
    )
    stop_sequences = fields.List(
        fields.String(validate=validate.Length(min=1)),
        validate=validate.Length(max=MAX_STOP_SEQUENCES),
        metadata=described(f"Up to {MAX_STOP_SEQUENCES} strings that end generation."),
    )
    stream = StrictBoolean(load_default=False, metadata=described("Stream server-sent events."))
    metadata = fields.Nested(MetadataSchema, metadata=described("`user_id`; kept, not used."))
    service_tier = fields.String(
        validate=validate.OneOf((*ANTHROPIC_TIERS, *SERVICE_TIERS)),
        metadata=described(
            "`auto` / `standard_only`: realtime. Extension: `flex` runs on the flex queue."
        ),
    )


class MessageCountTokensRequestSchema(MessageInputFields):
    """``POST /v1/messages/count_tokens``."""


class MessageBatchRequestSchema(Schema):
    custom_id = fields.String(
        required=True,
        validate=validate.Regexp(r"^[a-zA-Z0-9_-]{1,64}$", error="1-64 letters, digits, _ or -."),
        metadata=described("Your id for the request; results carry it."),
    )
    params = fields.Nested(
        MessageCreateRequestSchema,
        required=True,
        metadata=described("A Messages request (no streaming)."),
    )

    @validates_schema
    def _no_stream(self, data: dict[str, Any], **_: Any) -> None:
        if data["params"].get("stream"):
            raise ValidationError({"params": {"stream": ["batch requests cannot stream."]}})


class MessageBatchCreateRequestSchema(Schema):
    """``POST /v1/messages/batches``; ``max_requests`` is this deployment's batch limit."""

    requests = fields.List(
        fields.Nested(MessageBatchRequestSchema),
        required=True,
        validate=validate.Length(min=1),
        metadata=described("The requests, each a `custom_id` and Messages `params`."),
    )

    @validates_schema
    def _unique_ids(self, data: dict[str, Any], **_: Any) -> None:
        seen: set[str] = set()
        for index, item in enumerate(data["requests"]):
            if item["custom_id"] in seen:
                raise ValidationError(
                    {"requests": {index: {"custom_id": ["`custom_id` must be unique."]}}}
                )
            seen.add(item["custom_id"])


class MessageBatchListRequestSchema(Schema):
    """Query of ``GET /v1/messages/batches``."""

    before_id = fields.String(metadata=described("The page before this batch id."))
    after_id = fields.String(metadata=described("The page after this batch id."))
    limit = fields.Integer(
        load_default=20,
        validate=validate.Range(min=1, max=1000),
        metadata=described("Page size, 1 to 1000."),
    )

    @validates_schema
    def _one_cursor(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("before_id") and data.get("after_id"):
            raise _fail("before_id", "send `before_id` or `after_id`, not both.")
