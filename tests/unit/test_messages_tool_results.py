"""A Messages ``tool_result`` that answers no earlier ``tool_use`` is refused in Anthropic's
terms (``tool_use_id``, ``tool_result``), not in those of the Chat request it becomes."""

from __future__ import annotations

from typing import Any

import pytest

from inference_platform.endpoints.messages.protocol import (
    MessageCountTokensRequestSchema,
    MessageCreateRequestSchema,
)
from inference_platform.endpoints.protocol import load
from inference_platform.errors import PlatformError

CALL = {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {}}


def _body(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": list(messages), **extra}


def _result(tool_use_id: str) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tool_use_id, "content": "sunny"}


@pytest.mark.parametrize(
    ("schema", "extra"),
    [(MessageCreateRequestSchema(), {"max_tokens": 8}), (MessageCountTokensRequestSchema(), {})],
)
def test_a_tool_result_without_its_tool_use_names_the_block(
    schema: Any, extra: dict[str, Any]
) -> None:
    body = _body(
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [CALL]},
        {"role": "user", "content": [_result("toolu_1"), _result("toolu_2")]},
        **extra,
    )
    with pytest.raises(PlatformError) as refused:
        load(schema, body)
    assert refused.value.param == "messages[2].content[1].tool_use_id"
    assert "toolu_2" in refused.value.message and "`tool_use`" in refused.value.message
    assert "tool_call_id" not in refused.value.message and "'tool'" not in refused.value.message


def test_a_tool_result_after_its_tool_use_is_taken() -> None:
    body = _body(
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [CALL]},
        {"role": "user", "content": [_result("toolu_1")]},
        max_tokens=8,
    )
    assert load(MessageCreateRequestSchema(), body)["messages"][2]["content"][0]["type"] == (
        "tool_result"
    )
