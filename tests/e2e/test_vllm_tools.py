"""Tool calling on real vLLM (its CPU build) with a tool-call parser in the catalog: ``auto``,
Responses function tools in every tier, an agent framework driving the stack unchanged, and
Anthropic tool use (``tool_use`` / ``tool_result`` blocks, streamed through ``messages.stream``)
on the same stack.

The stack's model is the demo model with vLLM's ``hermes`` parser, as the demo catalog of
``make run`` declares it. Its weights are random: left to choose (``auto``) it writes words, so
calls the tests must see are forced (``required`` or a named function).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import anthropic
import jsonschema
import openai
import pydantic
import pytest

from tests.e2e.vllm_stack import VLLM_MODEL, VllmStack, requires_vllm, run_vllm_stack
from tests.helpers import batch_finished, finished, lines_of, submit

pytestmark = [pytest.mark.e2e, requires_vllm]

PARAMS = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "pattern": "^[a-z ]{1,12}$"},
        "unit": {"type": "string", "enum": ["c", "f"]},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}
CHAT_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": PARAMS}}
TOOL = {"type": "function", "name": "get_weather", "parameters": PARAMS, "strict": True}
NAMED = {"type": "function", "name": "get_weather"}
QUESTION = "What is the weather in Oslo?"


@pytest.fixture(scope="module")
def tools_stack(var_dir: Path, demo_model_path: Path) -> Iterator[VllmStack]:
    # Agent frameworks send long tool schemas: room for them and two turns.
    yield from run_vllm_stack(
        var_dir,
        demo_model_path,
        name="vllm-tools",
        tool_parser="hermes",
        embeddings=False,
        max_model_len=2048,
    )


@pytest.fixture(scope="module")
def client(tools_stack: VllmStack) -> openai.OpenAI:
    return tools_stack.client()


def _valid_args(arguments: str) -> dict[str, Any]:
    args = json.loads(arguments)
    jsonschema.validate(args, PARAMS)
    return dict(args)


def _calls(response: Any) -> list[Any]:
    return [item for item in response.output if item.type == "function_call"]


# -- Chat Completions: auto -----------------------------------------------------------------


def test_auto_answers_with_content_or_valid_calls_streamed_or_not(client: openai.OpenAI) -> None:
    kw: dict[str, Any] = {
        "model": VLLM_MODEL,
        "messages": [{"role": "user", "content": QUESTION}],
        "tools": [CHAT_TOOL],
        "max_tokens": 24,
        "seed": 11,
    }
    done = client.chat.completions.create(**kw)
    choice = done.choices[0]
    if choice.message.tool_calls:  # the parser found a call: it must fit the schema
        assert choice.finish_reason == "tool_calls"
        for call in choice.message.tool_calls:
            assert call.function.name == "get_weather"  # type: ignore[union-attr]
            _valid_args(call.function.arguments)  # type: ignore[union-attr]
    else:
        assert choice.finish_reason in ("stop", "length")
        content = choice.message.content or ""
        # The parser's envelope never reaches the client: only the model's own text does.
        assert '"tool_calls"' not in content
    # The same seed streamed: the same answer, delivered when the choice ends.
    streamed, calls, finish = "", [], None
    for chunk in client.chat.completions.create(**kw, stream=True):
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        streamed += delta.content or ""
        calls += delta.tool_calls or []
        finish = chunk.choices[0].finish_reason or finish
    assert finish == choice.finish_reason
    assert streamed == (choice.message.content or "")
    assert len(calls) == len(choice.message.tool_calls or [])
    # "auto" said aloud is the same as leaving it out.
    explicit = client.chat.completions.create(**kw, tool_choice="auto")
    assert explicit.choices[0].message.content == choice.message.content


def test_auto_keeps_the_tool_call_markers_for_the_parser(
    client: openai.OpenAI, demo_model_path: Path
) -> None:
    """The model is pushed to write ``<tool_call>`` (a token of the demo vocabulary): the marker
    reaches the parser, which finds no valid call in what follows and returns it as content."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(demo_model_path))
    (marker,) = tokenizer.encode("<tool_call>", add_special_tokens=False)
    done = client.chat.completions.create(
        model=VLLM_MODEL,
        messages=[{"role": "user", "content": QUESTION}],
        tools=[CHAT_TOOL],  # type: ignore[list-item]
        max_tokens=3,
        logit_bias={str(marker): 100},
    )
    choice = done.choices[0]
    assert choice.message.tool_calls is None and choice.finish_reason == "length"
    assert (choice.message.content or "").startswith("<tool_call>")


# -- Responses: function tools ---------------------------------------------------------------


def test_responses_forced_call_streamed_and_not_and_stored(client: openai.OpenAI) -> None:
    kw: dict[str, Any] = {
        "model": VLLM_MODEL,
        "input": QUESTION,
        "tools": [TOOL],
        "tool_choice": NAMED,
        "max_output_tokens": 120,
    }
    done = client.responses.create(**kw)
    assert done.status == "completed" and done.output_text == ""
    (call,) = _calls(done)
    assert call.name == "get_weather" and call.status == "completed"
    assert call.call_id.startswith("call_") and call.id.startswith("fc_")
    _valid_args(call.arguments)
    assert done.tools[0].name == "get_weather" and done.tool_choice.name == "get_weather"
    # Stored: retrieving it returns the same call.
    again = client.responses.retrieve(done.id)
    assert [c.model_dump() for c in _calls(again)] == [call.model_dump()]
    # The SDK's parse helper reads a strict tool's arguments.
    parsed = client.responses.parse(**kw)
    (parsed_call,) = _calls(parsed)
    assert parsed_call.parsed_arguments == _valid_args(parsed_call.arguments)

    # Streamed through the SDK's helper: the function_call events come in order.
    with client.responses.stream(**kw) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    (streamed,) = _calls(final)
    _valid_args(streamed.arguments)
    opened = kinds.index("response.output_item.added")
    assert kinds[opened : opened + 4] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
    ]
    assert kinds[-1] == "response.completed"
    # A stored stream replays the same events when resumed.
    replay = list(client.responses.retrieve(final.id, stream=True, starting_after=1))
    assert [e.type for e in replay] == kinds[2:]


def test_responses_two_turns_with_function_call_output(client: openai.OpenAI) -> None:
    first = client.responses.create(
        model=VLLM_MODEL,
        input=[{"role": "user", "content": QUESTION}],
        tools=[TOOL],  # type: ignore[list-item]
        tool_choice="required",
        parallel_tool_calls=False,
        max_output_tokens=120,
    )
    (call,) = _calls(first)
    _valid_args(call.arguments)
    result = {"type": "function_call_output", "call_id": call.call_id, "output": '{"temp": 3}'}
    # The whole conversation sent back, as stateless clients (and agent frameworks) do.
    second = client.responses.create(
        model=VLLM_MODEL,
        input=[
            {"role": "user", "content": QUESTION},
            *[item.model_dump(exclude_none=True) for item in first.output],
            result,
        ],  # type: ignore[list-item]
        tools=[TOOL],  # type: ignore[list-item]
        max_output_tokens=8,
    )
    assert second.status in ("completed", "incomplete") and not _calls(second)
    assert second.output[0].type == "message"
    items = client.responses.input_items.list(second.id, order="asc").data
    assert [i.type for i in items] == ["message", "function_call", "function_call_output"]
    # Or continued by id: only the function's output is new.
    third = client.responses.create(
        model=VLLM_MODEL,
        previous_response_id=first.id,
        input=[result],  # type: ignore[list-item]
        tools=[TOOL],  # type: ignore[list-item]
        tool_choice="none",
        max_output_tokens=8,
    )
    assert third.status in ("completed", "incomplete") and third.output[0].type == "message"


def test_background_function_call_and_a_batch_line(client: openai.OpenAI) -> None:
    bg = client.responses.create(
        model=VLLM_MODEL,
        input=QUESTION,
        tools=[TOOL],  # type: ignore[list-item]
        tool_choice=NAMED,  # type: ignore[arg-type]
        max_output_tokens=120,
        background=True,
        service_tier="flex",
    )
    assert bg.status in ("queued", "in_progress") and bg.tools[0].name == "get_weather"
    final = finished(client, bg.id, timeout=180)
    assert final.status == "completed"
    (call,) = _calls(final)
    _valid_args(call.arguments)

    line = {
        "custom_id": "call",
        "method": "POST",
        "url": "/v1/responses",
        "body": {
            "model": VLLM_MODEL,
            "input": QUESTION,
            "tools": [TOOL],
            "tool_choice": "required",
            "max_output_tokens": 120,
        },
    }
    batch = batch_finished(client, submit(client, [line], endpoint="/v1/responses").id, 180)
    (out,) = lines_of(client, batch.output_file_id)
    body = out["response"]["body"]
    calls = [item for item in body["output"] if item["type"] == "function_call"]
    assert calls and all(c["name"] == "get_weather" for c in calls), body
    for c in calls:
        _valid_args(c["arguments"])


# -- an agent framework, unchanged ------------------------------------------------------------


class Report(pydantic.BaseModel):
    """The agent's final answer."""

    unit: Literal["c", "f"]


@pytest.mark.parametrize("api", ["chat_completions", "responses"])
def test_openai_agents_sdk_round_trip(tools_stack: VllmStack, api: str) -> None:
    """The OpenAI Agents SDK calls the tool on a forced first turn, then (tool_choice reset to
    auto, the SDK's default) the second turn produces the final output. The output is typed,
    so the SDK asks for it as a JSON schema: a random-weight model would otherwise write words
    until the token limit, which the SDK treats as a failed turn."""
    agents = pytest.importorskip("agents")
    import asyncio

    agents.set_tracing_disabled(True)  # no trace export: nothing outside is reachable
    seen: list[dict[str, Any]] = []

    @agents.function_tool
    def get_weather(city: Literal["oslo", "paris"], unit: Literal["c", "f"]) -> str:
        """The weather in a city."""
        seen.append({"city": city, "unit": unit})
        return f"3 degrees {unit} in {city}"

    async def run() -> Any:
        client = openai.AsyncOpenAI(
            base_url=tools_stack.stack.base_url, api_key=tools_stack.api_key, max_retries=0
        )
        model_cls = (
            agents.OpenAIChatCompletionsModel
            if api == "chat_completions"
            else agents.OpenAIResponsesModel
        )
        agent = agents.Agent(
            name="weather",
            instructions="Answer with the weather.",
            tools=[get_weather],
            model=model_cls(model=VLLM_MODEL, openai_client=client),
            output_type=Report,
            # One call: a random-weight model free to add calls would add them to the limit.
            # The JSON of a call may take a token per character: room for it. A seed (vLLM's
            # extension) keeps the run reproducible.
            model_settings=agents.ModelSettings(
                tool_choice="required",
                parallel_tool_calls=False,
                max_tokens=200,
                extra_body={"seed": 5},
            ),
        )
        try:
            return await agents.Runner.run(agent, QUESTION, max_turns=3)
        finally:
            await client.close()

    result = asyncio.run(run())
    assert len(seen) == 1  # the tool ran once, with arguments its schema allows
    jsonschema.validate(seen[0], get_weather.params_json_schema)
    calls = [i for i in result.new_items if i.type == "tool_call_item"]
    outputs = [i for i in result.new_items if i.type == "tool_call_output_item"]
    assert len(calls) == 1 and len(outputs) == 1
    # Two model turns: the forced call, then the answer that is the final output.
    assert len(result.raw_responses) == 2
    assert isinstance(result.final_output, Report)
    last = result.raw_responses[-1].output
    assert not [item for item in last if getattr(item, "type", None) == "function_call"]


# -- the same engine through the ``anthropic`` SDK: tool_use and tool_result blocks ----------

MESSAGES_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": PARAMS,
}
MESSAGES_QUESTION = [{"role": "user", "content": "What is the weather in Oslo?"}]


@pytest.fixture(scope="module")
def claude(tools_stack: VllmStack) -> anthropic.Anthropic:
    root = tools_stack.stack.base_url.removesuffix("/v1")
    return anthropic.Anthropic(
        base_url=root, api_key=tools_stack.api_key, max_retries=0, timeout=180
    )


def _messages_kw(**extra: Any) -> dict[str, Any]:
    return {
        "model": VLLM_MODEL,
        "max_tokens": 120,
        "messages": MESSAGES_QUESTION,
        "tools": [MESSAGES_TOOL],
        "extra_body": {"temperature": 0},
        **extra,
    }


def test_forced_tool_use_whole_and_streamed(claude: anthropic.Anthropic) -> None:
    kw = _messages_kw(tool_choice={"type": "tool", "name": "get_weather"})
    message = claude.messages.create(**kw)
    assert message.stop_reason == "tool_use"
    (call,) = [b for b in message.content if b.type == "tool_use"]
    assert call.name == "get_weather" and call.id.startswith("toolu_")
    jsonschema.validate(call.input, PARAMS)

    with claude.messages.stream(**kw) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    # A named tool's input streams as it is generated: several input_json_delta events.
    assert kinds.count("input_json") > 1
    (streamed,) = [b for b in final.content if b.type == "tool_use"]
    assert streamed.input == call.input and final.stop_reason == "tool_use"


def test_any_tool_then_the_result_round_trip(claude: anthropic.Anthropic) -> None:
    first = claude.messages.create(
        **_messages_kw(tool_choice={"type": "any", "disable_parallel_tool_use": True})
    )
    (call,) = [b for b in first.content if b.type == "tool_use"]
    jsonschema.validate(call.input, PARAMS)
    # The call and its result go back as the SDK builds them; tools off, the model answers.
    follow_up = [
        *MESSAGES_QUESTION,
        first.to_param(),
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": call.id, "content": "3 degrees c"},
                {"type": "text", "text": "Answer now."},
            ],
        },
    ]
    answer = claude.messages.create(
        **_messages_kw(messages=follow_up, tool_choice={"type": "none"}, max_tokens=8)
    )
    assert answer.content[0].type == "text" and answer.content[0].text
    assert answer.stop_reason in ("end_turn", "max_tokens")
    counted = claude.messages.count_tokens(
        model=VLLM_MODEL, messages=follow_up, tools=[MESSAGES_TOOL], tool_choice={"type": "none"}
    )
    assert counted.input_tokens == answer.usage.input_tokens
