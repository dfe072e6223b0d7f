"""``tool_choice: "auto"``: vLLM's tool-call parser on a known text, the envelope the engine
returns, and how Chat and Responses objects (and Responses streams) are built from it."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from openai.types.chat import ChatCompletion
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from inference_platform import events as channel
from inference_platform import tool_calls
from inference_platform.catalog import _spec
from inference_platform.endpoints.chat_completions.protocol import chat_completion
from inference_platform.endpoints.protocol import load
from inference_platform.endpoints.responses import inputs
from inference_platform.endpoints.responses import protocol as responses
from inference_platform.endpoints.responses.protocol import ResponseCreateRequestSchema
from inference_platform.endpoints.responses.stream import StreamBuilder, synthesize
from inference_platform.errors import PlatformError
from inference_platform.events import Usage

WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
CHAT_BODY: dict[str, Any] = {"model": "m", "tools": [{"type": "function", "function": WEATHER}]}
RESPONSES_BODY: dict[str, Any] = {
    "model": "m",
    "input": "weather?",
    "tools": [{"type": "function", **WEATHER}],
}
HERMES_TEXT = (
    'Let me look. <tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'
)


def test_auto_is_what_tools_without_a_choice_mean() -> None:
    assert tool_calls.parses_auto(CHAT_BODY)
    assert tool_calls.parses_auto({**CHAT_BODY, "tool_choice": "auto"})
    for choice in ("none", "required", {"type": "function", "function": {"name": "get_weather"}}):
        assert not tool_calls.parses_auto({**CHAT_BODY, "tool_choice": choice})
    assert not tool_calls.parses_auto({"model": "m", "tools": []})
    # The parser gets the tools in Chat's shape, from either endpoint's shape.
    for body in (CHAT_BODY, RESPONSES_BODY):
        tools = json.loads(tool_calls.parser_tools(body) or "null")
        assert tools == [{"type": "function", "function": WEATHER}]


def test_a_model_without_a_parser_refuses_auto_naming_tool_choice() -> None:
    with pytest.raises(PlatformError) as err:
        tool_calls.check_parser("m", None, CHAT_BODY)
    assert err.value.status == 400 and err.value.param == "tool_choice"
    assert "no tool parser configured" in err.value.message
    tool_calls.check_parser("m", "hermes", CHAT_BODY)  # a parser: served
    tool_calls.check_parser("m", None, {**CHAT_BODY, "tool_choice": "required"})  # forced


def test_catalog_tool_parser_needs_the_vllm_engine() -> None:
    spec = _spec({"name": "m", "engine": "vllm", "tool_parser": "hermes"})
    assert spec.tool_parser == "hermes"
    assert _spec({"name": "m", "engine": "vllm"}).tool_parser is None
    with pytest.raises(ValueError, match="vllm engine"):
        _spec({"name": "m", "engine": "transformers", "tool_parser": "hermes"})
    with pytest.raises(ValueError, match="tool_parser"):
        _spec({"name": "m", "engine": "vllm", "tool_parser": "no such/parser"})


def test_split_reads_the_envelope_and_leaves_other_text_alone() -> None:
    envelope = tool_calls.wrap("Let me look. ", [("get_weather", '{"city": "Oslo"}')])
    out = tool_calls.split(CHAT_BODY, envelope, "chatcmpl-1")
    assert out.content == "Let me look. "
    assert out.calls is not None and [c.name for c in out.calls] == ["get_weather"]
    assert json.loads(out.calls[0].arguments) == {"city": "Oslo"}
    # Ids are derived from the object, so a stream and the stored object agree.
    again = tool_calls.split(CHAT_BODY, envelope, "chatcmpl-1")
    assert again.calls is not None and again.calls[0].id == out.calls[0].id
    plain = tool_calls.split(CHAT_BODY, tool_calls.wrap("just words", []), "c")
    assert plain == tool_calls.Output("just words", None)
    # Text that is not an envelope (cut short, or tools off) stays content, as generated.
    assert tool_calls.split(CHAT_BODY, '{"content": "x"', "c") == tool_calls.Output(
        '{"content": "x"'
    )
    off = {**CHAT_BODY, "tool_choice": "none"}
    assert tool_calls.split(off, envelope, "c") == tool_calls.Output(envelope)


def test_chat_completion_from_an_envelope_validates_as_the_sdk_reads_it() -> None:
    envelope = tool_calls.wrap(None, [("get_weather", '{"city": "Oslo"}')])
    obj = chat_completion(
        id="chatcmpl-1",
        created=1,
        model="m",
        choices=[(envelope, "stop"), (tool_calls.wrap("hi", []), "stop")],
        usage=Usage(3, 4),
        service_tier="default",
        body=CHAT_BODY,
    )
    parsed = ChatCompletion.model_validate(obj)
    called, answered = parsed.choices
    assert called.finish_reason == "tool_calls" and called.message.content is None
    assert called.message.tool_calls is not None
    assert called.message.tool_calls[0].function.name == "get_weather"  # type: ignore[union-attr]
    assert answered.finish_reason == "stop" and answered.message.content == "hi"
    assert answered.message.tool_calls is None


@pytest.fixture(scope="module")
def demo_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from transformers import AutoTokenizer

    from inference_platform.demo_model import TOOL_CALL_TOKENS, build_demo_model

    path: Path = build_demo_model(tmp_path_factory.mktemp("models") / "demo")
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    # The Hermes markers are whole tokens of the demo vocabulary, and survive decoding.
    for token in TOOL_CALL_TOKENS:
        ids = tokenizer.encode(token, add_special_tokens=False)
        assert len(ids) == 1 and tokenizer.decode(ids, skip_special_tokens=True) == token
    return tokenizer


vllm_only = pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="needs vLLM")


def _parser(name: str, tokenizer: Any) -> Any:
    from inference_platform.engines.tool_parsing import ToolCallParser

    # Importing vLLM imports torch modules that warn about their own deprecations.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return ToolCallParser(name, tokenizer)


@vllm_only
def test_vllm_hermes_parser_on_a_known_text(demo_tokenizer: Any) -> None:
    parser = _parser("hermes", demo_tokenizer)
    tools = tool_calls.parser_tools(CHAT_BODY)
    assert tools is not None
    out = tool_calls.split(CHAT_BODY, parser.parse(HERMES_TEXT, tools), "chatcmpl-9")
    assert out.content == "Let me look. "
    assert out.calls is not None and len(out.calls) == 1
    assert out.calls[0].name == "get_weather"
    assert json.loads(out.calls[0].arguments) == {"city": "Oslo"}
    # No call in the text: all of it is content.
    plain = tool_calls.split(CHAT_BODY, parser.parse("random words", tools), "c")
    assert plain == tool_calls.Output("random words", None)


@vllm_only
def test_an_unknown_parser_name_fails_at_start(demo_tokenizer: Any) -> None:
    from inference_platform.engines.base import EngineError

    with pytest.raises(EngineError, match="unknown tool_parser"):
        _parser("no_such_parser", demo_tokenizer)


# -- Responses ------------------------------------------------------------------------------


def _finished(body: dict[str, Any], text: str) -> dict[str, Any]:
    return responses.finished(
        id="resp_abc",
        created_at=1,
        body=body,
        status="completed",
        text=text,
        input_tokens=5,
        output_tokens=6,
        finish_reason="stop",
    )


def test_responses_schema_takes_function_tools_and_call_items() -> None:
    schema = ResponseCreateRequestSchema()
    call = {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": '{"city": "Oslo"}',
        "status": "completed",
    }
    result = {"type": "function_call_output", "call_id": "call_1", "output": '{"temp": 3}'}
    body = {
        **RESPONSES_BODY,
        "input": [{"role": "user", "content": "weather?"}, call, result],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "parallel_tool_calls": False,
    }
    loaded = load(schema, body)
    assert loaded["tool_choice"] == {"type": "function", "name": "get_weather"}
    with pytest.raises(PlatformError) as err:
        load(schema, {**body, "tool_choice": {"type": "function", "name": "nope"}})
    assert err.value.param == "tool_choice"
    with pytest.raises(PlatformError) as err:
        load(schema, {**body, "tools": [{"type": "web_search"}]})
    assert err.value.param is not None and err.value.param.startswith("tools")
    with pytest.raises(PlatformError) as err:
        load(schema, {**body, "input": [{**call, "name": None}]})
    assert err.value.param == "input[0].name"


def test_responses_call_items_become_chat_turns() -> None:
    items = inputs.input_items(
        [
            {"role": "user", "content": "weather?"},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"a": 1}'},
            {"type": "function_call", "call_id": "c2", "name": "f", "arguments": '{"a": 2}'},
            {"type": "function_call_output", "call_id": "c1", "output": "one"},
            {"type": "function_call_output", "call_id": "c2", "output": "two"},
        ]
    )
    assert [i["type"] for i in items[1:3]] == ["function_call"] * 2
    assert items[3]["id"].startswith("fco_") and items[3]["output"] == "one"
    messages = inputs.messages("Be brief.", inputs.history(items))
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "tool"]
    calls = messages[2]["tool_calls"]  # consecutive calls are one assistant turn
    assert [c["id"] for c in calls] == ["c1", "c2"]
    assert calls[0]["function"] == {"name": "f", "arguments": {"a": 1}}  # as templates read it
    assert messages[3] == {"role": "tool", "content": "one", "tool_call_id": "c1"}


def test_a_continuation_carries_the_earlier_function_calls() -> None:
    body = {**RESPONSES_BODY, "tool_choice": "required"}
    earlier = _finished(body, '[{"name": "get_weather", "arguments": {"city": "Oslo"}}]')
    (call,) = earlier["output"]
    answer = {"type": "function_call_output", "call_id": call["call_id"], "output": "3 C"}
    turns = inputs.history(inputs.input_items([answer]), {"_history": []}, earlier["output"])
    assert turns[0]["role"] == "assistant" and turns[0]["tool_calls"][0]["id"] == call["call_id"]
    assert turns[1] == {"role": "tool", "content": "3 C", "tool_call_id": call["call_id"]}


def test_response_output_items_and_echoed_tools() -> None:
    body = {**RESPONSES_BODY, "parallel_tool_calls": False}
    envelope = tool_calls.wrap("Checking.", [("get_weather", '{"city": "Oslo"}')])
    obj = _finished(body, envelope)
    parsed = Response.model_validate(obj)
    message, call = parsed.output
    assert message.type == "message" and parsed.output_text == "Checking."
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.call_id.startswith("call_") and call.id is not None and call.id.startswith("fc_")
    assert json.loads(call.arguments) == {"city": "Oslo"}
    assert parsed.tools[0].name == "get_weather"  # type: ignore[union-attr]
    assert parsed.tool_choice == "auto" and parsed.parallel_tool_calls is False
    # A forced named call: only the call, no message.
    named = {**RESPONSES_BODY, "tool_choice": {"type": "function", "name": "get_weather"}}
    forced = Response.model_validate(_finished(named, '{"city": "Rome"}'))
    assert [item.type for item in forced.output] == ["function_call"]
    assert forced.tool_choice.name == "get_weather"  # type: ignore[union-attr]
    # No call: the message alone, as without tools.
    plain = Response.model_validate(_finished(RESPONSES_BODY, tool_calls.wrap("Hi.", [])))
    assert [item.type for item in plain.output] == ["message"] and plain.output_text == "Hi."


def test_streamed_function_call_events_match_the_sdk() -> None:
    body = {**RESPONSES_BODY, "tool_choice": "required"}
    text = '[{"name": "get_weather", "arguments": {"city": "Oslo"}}]'
    base = responses.response(id="resp_abc", created_at=1, body=body, status="in_progress")
    final = _finished(body, text)
    events = synthesize(base, final, text)
    adapter: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
    parsed = [adapter.validate_python(payload) for _, payload in events]
    kinds = [e.type for e in parsed]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in parsed] == list(range(len(parsed)))
    added, delta, done, item_done = parsed[2:6]
    assert added.item.type == "function_call" and added.item.status == "in_progress"
    assert delta.item_id == added.item.id == item_done.item.id
    assert json.loads(done.arguments) == {"city": "Oslo"}
    # The live path (text fed as it comes) yields exactly the same sequence, so a resumed
    # stream and a replay agree.
    live = StreamBuilder(base)
    again = live.created() + live.feed(channel.Started())
    for piece in (text[:9], text[9:]):
        again += live.feed(channel.TextDelta(0, piece))
    assert again + live.finish(final) == events


def test_streamed_auto_output_with_text_and_a_call() -> None:
    envelope = tool_calls.wrap("Checking.", [("get_weather", '{"city": "Oslo"}')])
    base = responses.response(id="resp_x", created_at=1, body=RESPONSES_BODY, status="in_progress")
    final = _finished(RESPONSES_BODY, envelope)
    events = synthesize(base, final, envelope)
    adapter: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
    parsed = [adapter.validate_python(payload) for _, payload in events]
    added = [e for e in parsed if e.type == "response.output_item.added"]
    assert [(e.output_index, e.item.type) for e in added] == [(0, "message"), (1, "function_call")]
    text_done = next(e for e in parsed if e.type == "response.output_text.done")
    assert text_done.text == "Checking."


def test_a_demo_model_built_before_the_tool_call_tokens_is_rebuilt(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from inference_platform.demo_model import build_demo_model

    path = build_demo_model(tmp_path / "demo")
    marker = path / ".demo_model_complete"
    marker.write_text("seed=0\n")  # as an older version wrote it: no tool-call tokens then
    assert build_demo_model(path) == path
    assert "format=2" in marker.read_text().split()
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    assert len(tokenizer.encode("<tool_call>", add_special_tokens=False)) == 1
    assert list(tmp_path.iterdir()) == [path]  # the old build is gone, nothing left beside it
