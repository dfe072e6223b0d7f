"""Responses input handling, object fields and the request schema."""

from __future__ import annotations

import pytest

from inference_platform.endpoints.protocol import load
from inference_platform.endpoints.responses import inputs
from inference_platform.endpoints.responses import protocol as objects
from inference_platform.endpoints.responses.protocol import ResponseCreateRequestSchema
from inference_platform.errors import PlatformError

SCHEMA = ResponseCreateRequestSchema()


def test_input_items_history_and_messages() -> None:
    items = inputs.input_items(
        [
            {"role": "user", "content": "q1"},
            {
                "type": "message",
                "role": "assistant",
                "id": "msg_given",
                "content": [{"type": "output_text", "text": "a1", "annotations": []}],
            },
            {
                "role": "developer",
                "content": [
                    {"type": "input_text", "text": "d"},
                    {"type": "input_text", "text": "!"},
                ],
            },
        ]
    )
    assert [i["role"] for i in items] == ["user", "assistant", "developer"]
    assert items[1]["id"] == "msg_given" and items[0]["id"].startswith("msg_")
    assert items[0]["content"] == [{"type": "input_text", "text": "q1"}]
    assert items[1]["content"][0]["annotations"] == []
    turns = inputs.history(items)
    assert turns == [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "system", "content": "d!"},
    ]
    assert inputs.messages("Be brief.", turns)[0] == {"role": "system", "content": "Be brief."}
    assert inputs.messages(None, turns) == turns
    # A continuation: the earlier history (never its instructions), its answer, the new input.
    earlier = {"_history": turns, "instructions": "not carried"}
    more = inputs.history(inputs.input_items("q2"), earlier, "a2")
    assert [t["content"] for t in more] == ["q1", "a1", "d!", "a2", "q2"]


def test_input_items_pagination() -> None:
    items = inputs.input_items([{"role": "user", "content": str(i)} for i in range(5)])
    first = inputs.page(items, after=None, limit=2, order="desc")
    assert [i["content"][0]["text"] for i in first["data"]] == ["4", "3"]
    assert first["has_more"] is True and first["first_id"] == items[4]["id"]
    rest = inputs.page(items, after=first["last_id"], limit=10, order="desc")
    assert [i["content"][0]["text"] for i in rest["data"]] == ["2", "1", "0"]
    assert rest["has_more"] is False and rest["object"] == "list"
    assert inputs.page([], after=None, limit=20, order="asc")["first_id"] is None
    with pytest.raises(PlatformError) as err:
        inputs.page(items, after="msg_nope", limit=2, order="asc")
    assert err.value.param == "after"


def test_response_object_fields() -> None:
    body = {"model": "m", "input": "x", "metadata": {"k": "v"}, "service_tier": "fast"}
    obj = objects.finished(
        id="resp_1",
        created_at=5,
        body=body,
        status="completed",
        text="hi",
        input_tokens=3,
        output_tokens=4,
        finish_reason="length",
    )
    # No max_output_tokens from the client: a server-side limit does not make it incomplete.
    assert obj["status"] == "completed" and obj["incomplete_details"] is None
    assert obj["service_tier"] == "priority" and obj["metadata"] == {"k": "v"}
    assert obj["usage"]["total_tokens"] == 7 and obj["completed_at"] is not None
    assert obj["output"][0]["id"] == "msg_1" and obj["output"][0]["content"][0]["text"] == "hi"
    for key in (
        "id",
        "created_at",
        "model",
        "object",
        "output",
        "parallel_tool_calls",
        "tool_choice",
        "tools",
        "error",
        "instructions",
        "previous_response_id",
        "store",
        "temperature",
        "top_p",
        "truncation",
        "text",
        "reasoning",
        "user",
    ):
        assert key in obj
    failed = objects.finished(
        id="resp_1",
        created_at=5,
        body=body,
        status="failed",
        text=None,
        input_tokens=None,
        output_tokens=None,
        error=objects.response_error(400, "too long"),
    )
    assert failed["output"] == [] and failed["usage"] is None
    assert failed["error"] == {"code": "invalid_prompt", "message": "too long"}
    assert objects.response_error(500, "x")["code"] == "server_error"


def _bad(body: dict) -> PlatformError:
    with pytest.raises(PlatformError) as err:
        load(SCHEMA, body)
    return err.value


def test_schema() -> None:
    text = {"format": {"type": "text"}}
    ok = load(SCHEMA, {"model": "m", "input": "x", "tools": [], "text": text})
    assert ok["background"] is False and ok["tools"] == []
    assert ok["text"] == text  # text.format is served now (structured outputs) and echoed
    assert _bad({"model": "m", "input": "x", "max_output_tokens": 0}).param == "max_output_tokens"
    assert _bad({"model": "m", "input": "x", "service_tier": "gold"}).param == "service_tier"
    assert _bad({"model": "m", "input": []}).param == "input"
    assert _bad({"model": "m", "input": [{"role": "tool", "content": "x"}]}).param == "input[0]"
    assert (
        _bad({"model": "m", "input": [{"type": "function_call_output", "output": "x"}]}).param
        == "input[0].call_id"
    )
    part = {"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}
    assert _bad({"model": "m", "input": [part]}).param == "input[0].content[0]"
    assert _bad({"model": "m", "input": "x", "reasoning": {"effort": "high"}}).param == "reasoning"
    assert _bad({"model": "m", "input": "x", "bogus": 1}).param == "bogus"
