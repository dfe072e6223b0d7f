"""Structured outputs and forced tool calls: from a request body to an engine constraint, and
from the constrained text back to ``tool_calls``.

Chat ``response_format`` and Responses ``text.format`` become a JSON-schema (or JSON-object)
constraint. A forced tool call is a structured output too, so it works for any model:

* a named function (``tool_choice: {"type": "function", ...}``) generates that function's
  arguments object, constrained by its ``parameters`` schema;
* ``required`` generates a JSON list of ``{"name", "arguments"}`` calls, each constrained by
  its function's schema (one call unless ``parallel_tool_calls`` allows more).

The text the engine returns is turned into ``tool_calls`` when the object is built, so the
event channel, jobs and batch lines carry plain text exactly as for any other request.
``tool_choice: "auto"`` needs a model-specific parser and is refused (see ``refusals``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from inference_platform.engines.base import StructuredOutput

# Features a request may need beyond plain sampling; engines list those they honour.
STRUCTURED = "structured_outputs"
PENALTIES = "penalties"
LOGPROBS = "logprobs"

NAMED = "named"
REQUIRED = "required"


@dataclass(frozen=True)
class ToolMode:
    """How a request forces tool calls: one named function, or ``required`` (any of them)."""

    kind: str
    names: tuple[str, ...]
    parallel: bool


def _function(tool: Mapping[str, Any]) -> Mapping[str, Any]:
    """A tool's function definition: nested in Chat (``function``), flat in Responses."""
    inner = tool.get("function")
    return inner if isinstance(inner, Mapping) else tool


def functions(body: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The request's function tools by name."""
    out: dict[str, Mapping[str, Any]] = {}
    for tool in body.get("tools") or ():
        fn = _function(tool)
        out[str(fn["name"])] = fn
    return out


def tool_mode(body: Mapping[str, Any]) -> ToolMode | None:
    """The forced tool calling a request asks for; None when it generates text."""
    choice = body.get("tool_choice")
    tools = functions(body)
    if not tools or choice in (None, "none", "auto"):
        return None
    parallel = body.get("parallel_tool_calls") is not False
    if choice == "required":
        return ToolMode(REQUIRED, tuple(tools), parallel)
    if isinstance(choice, Mapping):
        name = _function(choice).get("name")
        return ToolMode(NAMED, (str(name),), False)
    return None


def _parameters(fn: Mapping[str, Any]) -> dict[str, Any]:
    params = fn.get("parameters")
    return dict(params) if isinstance(params, Mapping) else {"type": "object", "properties": {}}


def _tool_schema(body: Mapping[str, Any], mode: ToolMode) -> dict[str, Any]:
    tools = functions(body)
    if mode.kind == NAMED:
        return _parameters(tools[mode.names[0]])
    calls = [
        {
            "type": "object",
            "properties": {"name": {"const": name}, "arguments": _parameters(tools[name])},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for name in mode.names
    ]
    schema: dict[str, Any] = {"type": "array", "items": {"anyOf": calls}, "minItems": 1}
    if not mode.parallel:
        schema["maxItems"] = 1
    return schema


def response_format(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Chat's ``response_format``, or Responses' ``text.format``, when it is not plain text."""
    fmt = body.get("response_format")
    if fmt is None:
        text = body.get("text")
        fmt = text.get("format") if isinstance(text, Mapping) else None
    if not isinstance(fmt, Mapping) or fmt.get("type") in (None, "text"):
        return None
    return fmt


def constraint(body: Mapping[str, Any]) -> StructuredOutput | None:
    """The engine constraint a request needs, if any (a forced tool call wins)."""
    mode = tool_mode(body)
    if mode is not None:
        return StructuredOutput(json=_dumps(_tool_schema(body, mode)))
    fmt = response_format(body)
    if fmt is None:
        return None
    if fmt["type"] == "json_object":
        return StructuredOutput(json_object=True)
    # Chat nests the schema in ``json_schema``; Responses' text.format is flat.
    nested = fmt.get("json_schema")
    spec: Mapping[str, Any] = nested if isinstance(nested, Mapping) else fmt
    schema = spec.get("schema")
    return StructuredOutput(json=_dumps(schema if isinstance(schema, Mapping) else {}))


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# -- from text back to calls -----------------------------------------------------------------


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the API carries it


def call_id(object_id: str, choice: int, index: int) -> str:
    """A call's id, derived from where it was made so every path (stream, stored object,
    retried job) names the same call the same way."""
    digest = hashlib.sha256(f"{object_id}:{choice}:{index}".encode()).hexdigest()[:24]
    return f"call_{digest}"


def parse_calls(
    body: Mapping[str, Any], text: str, object_id: str, choice: int = 0
) -> list[ToolCall] | None:
    """The calls in a forced-call generation; None when the request forced no call or the
    text is not a complete call (cut short by the token limit)."""
    mode = tool_mode(body)
    if mode is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if mode.kind == NAMED and isinstance(value, dict):
        # The text is the arguments object itself; kept as generated, as a stream sent it.
        return [ToolCall(call_id(object_id, choice, 0), mode.names[0], text)]
    if mode.kind == NAMED or not isinstance(value, list):
        return None
    calls = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or "name" not in item:
            return None
        args = _dumps_plain(item.get("arguments", {}))
        calls.append(ToolCall(call_id(object_id, choice, i), str(item["name"]), args))
    return calls


def _dumps_plain(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def streams_arguments(body: Mapping[str, Any]) -> str | None:
    """The function name when the generated text IS the arguments of one call (a named
    function), so a stream can pass text through as argument deltas."""
    mode = tool_mode(body)
    return mode.names[0] if mode is not None and mode.kind == NAMED else None


def needed_features(body: Mapping[str, Any]) -> dict[str, str]:
    """Features a request needs beyond plain sampling -> the field that asked for each."""
    needs: dict[str, str] = {}
    if tool_mode(body) is not None:
        needs[STRUCTURED] = "tool_choice"
    elif response_format(body) is not None:
        needs[STRUCTURED] = "response_format" if "response_format" in body else "text.format"
    for name in ("presence_penalty", "frequency_penalty", "logit_bias"):
        if body.get(name):
            needs.setdefault(PENALTIES, name)
    extras = ("repetition_penalty", "top_k", "min_p", "min_tokens")
    for name in extras:
        if body.get(name) is not None:
            needs.setdefault(PENALTIES, name)
    # Chat's ``logprobs: true`` or Completions' ``logprobs: k`` (0 asks for the sampled token,
    # hence no ``in (None, False)``: 0 == False).
    if body.get("logprobs") is not None and body.get("logprobs") is not False:
        needs[LOGPROBS] = "logprobs"
    return needs
