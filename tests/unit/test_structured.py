"""Structured outputs and forced tool calls: the engine constraint a body asks for, calls
parsed back from text, and the 400 an engine without the feature answers with."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from inference_platform import structured
from inference_platform.endpoints.chat_completions.protocol import (
    ChatCompletionCreateRequestSchema,
    chat_completion,
)
from inference_platform.endpoints.protocol import load
from inference_platform.engines.base import UnsupportedByEngine
from inference_platform.engines.simulated import SimulatedEngine
from inference_platform.errors import PlatformError
from inference_platform.events import Usage
from inference_platform.generation import check_features

PARAMS = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
TOOL = {"type": "function", "function": {"name": "search", "parameters": PARAMS}}
USER = [{"role": "user", "content": "hi"}]


def chat(**body: Any) -> dict[str, Any]:
    return load(ChatCompletionCreateRequestSchema(), {"model": "m", "messages": USER, **body})


def test_named_tool_generates_its_arguments_and_becomes_a_tool_call() -> None:
    body = chat(tools=[TOOL], tool_choice={"type": "function", "function": {"name": "search"}})
    spec = structured.constraint(body)
    assert spec is not None and json.loads(spec.json or "") == PARAMS
    done = chat_completion(
        id="chatcmpl-1",
        created=0,
        model="m",
        choices=[('{"q": "sea"}', "stop")],
        usage=Usage(1, 2),
        service_tier="default",
        body=body,
    )
    choice = done["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["function"] == {"name": "search", "arguments": '{"q": "sea"}'}


def test_required_generates_a_list_of_calls() -> None:
    body = chat(tools=[TOOL], tool_choice="required", parallel_tool_calls=False)
    spec = json.loads(structured.constraint(body).json or "")  # type: ignore[union-attr]
    assert spec["type"] == "array" and spec["maxItems"] == 1
    calls = structured.parse_calls(body, '[{"name": "search", "arguments": {"q": "x"}}]', "c")
    assert calls is not None and calls[0].name == "search"
    assert structured.parse_calls(body, '[{"name": "sea', "c") is None  # cut short


def test_json_schema_response_format() -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": PARAMS, "strict": True}}
    spec = structured.constraint(chat(response_format=fmt))
    assert spec is not None and json.loads(spec.json or "") == PARAMS
    assert structured.constraint(chat(response_format={"type": "json_object"})).json_object  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": [TOOL], "tool_choice": "sometimes"}, "tool_choice"),
        (
            {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "x"}}},
            "tool_choice",
        ),
        ({"response_format": {"type": "json_schema"}}, "response_format"),
        ({"logit_bias": {"abc": 1}}, "logit_bias"),
        ({"messages": [{"role": "tool", "content": "1"}]}, "messages[0].tool_call_id"),
    ],
)
def test_bad_tool_and_format_fields_get_a_400(body: dict[str, Any], param: str) -> None:
    with pytest.raises(PlatformError) as err:
        chat(**body)
    assert err.value.status == 400 and err.value.param == param


def test_auto_passes_the_schema() -> None:
    """``auto`` (the default with tools) is decided per model, by its catalog ``tool_parser``
    (see test_tool_calls), not refused by the schema."""
    assert chat(tools=[TOOL])["tools"] == [TOOL]
    assert chat(tools=[TOOL], tool_choice="auto")["tool_choice"] == "auto"


def test_tool_history_is_accepted() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "search", "arguments": "{}"}}
    messages = [
        *USER,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "found"},
    ]
    assert len(chat(messages=messages)["messages"]) == 3


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"tools": [TOOL], "tool_choice": "required"}, "tool_choice"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"top_k": 4}, "top_k"),
    ],
)
def test_an_engine_without_the_feature_refuses_it_by_name(body: dict[str, Any], param: str) -> None:
    host = SimpleNamespace(engine=SimulatedEngine("sim", None, {}))
    with pytest.raises(UnsupportedByEngine) as err:
        check_features(host, chat(**body))  # type: ignore[arg-type]
    assert err.value.status_code == 400 and err.value.param == param
    assert "simulated engine" in err.value.message
