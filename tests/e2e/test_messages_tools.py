"""Tool use through the ``anthropic`` SDK on real vLLM (its CPU build), whose engine serves
tools: a forced call (``tool`` and ``any``), streamed through ``messages.stream``, and the
round trip that sends the call and its ``tool_result`` back.

The model is the demo model with random weights: calls the tests must see are forced.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import jsonschema
import pytest

from tests.e2e.vllm_stack import VLLM_MODEL, VllmStack, requires_vllm, run_vllm_stack

pytestmark = [pytest.mark.e2e, requires_vllm]

SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "pattern": "^[a-z ]{1,12}$"},
        "unit": {"type": "string", "enum": ["c", "f"]},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}
TOOL = {"name": "get_weather", "description": "The weather in a city.", "input_schema": SCHEMA}
QUESTION = [{"role": "user", "content": "What is the weather in Oslo?"}]


@pytest.fixture(scope="module")
def tools_stack(var_dir: Path, demo_model_path: Path) -> Iterator[VllmStack]:
    yield from run_vllm_stack(
        var_dir,
        demo_model_path,
        name="vllm-messages-tools",
        tool_parser="hermes",
        embeddings=False,
        max_model_len=2048,
    )


@pytest.fixture(scope="module")
def claude(tools_stack: VllmStack) -> anthropic.Anthropic:
    root = tools_stack.stack.base_url.removesuffix("/v1")
    return anthropic.Anthropic(
        base_url=root, api_key=tools_stack.api_key, max_retries=0, timeout=180
    )


def _kw(**extra: Any) -> dict[str, Any]:
    return {
        "model": VLLM_MODEL,
        "max_tokens": 120,
        "messages": QUESTION,
        "tools": [TOOL],
        "extra_body": {"temperature": 0},
        **extra,
    }


def test_forced_tool_use_whole_and_streamed(claude: anthropic.Anthropic) -> None:
    kw = _kw(tool_choice={"type": "tool", "name": "get_weather"})
    message = claude.messages.create(**kw)
    assert message.stop_reason == "tool_use"
    (call,) = [b for b in message.content if b.type == "tool_use"]
    assert call.name == "get_weather" and call.id.startswith("toolu_")
    jsonschema.validate(call.input, SCHEMA)

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
        **_kw(tool_choice={"type": "any", "disable_parallel_tool_use": True})
    )
    (call,) = [b for b in first.content if b.type == "tool_use"]
    jsonschema.validate(call.input, SCHEMA)
    # The call and its result go back as the SDK builds them; tools off, the model answers.
    follow_up = [
        *QUESTION,
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
        **_kw(messages=follow_up, tool_choice={"type": "none"}, max_tokens=8)
    )
    assert answer.content[0].type == "text" and answer.content[0].text
    assert answer.stop_reason in ("end_turn", "max_tokens")
    counted = claude.messages.count_tokens(
        model=VLLM_MODEL, messages=follow_up, tools=[TOOL], tool_choice={"type": "none"}
    )
    assert counted.input_tokens == answer.usage.input_tokens
