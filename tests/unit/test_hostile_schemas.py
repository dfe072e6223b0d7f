"""Request loading refuses what Postgres or the engines cannot take, naming the param."""

from __future__ import annotations

from typing import Any

import pytest

from inference_platform.batches.checks import line_checks
from inference_platform.batches.lines import LineValidator
from inference_platform.endpoints.chat_completions.protocol import ChatCompletionCreateRequestSchema
from inference_platform.endpoints.protocol import check_json, load
from inference_platform.endpoints.responses.protocol import ResponseCreateRequestSchema
from inference_platform.errors import PlatformError


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}


def refused(schema: Any, body: dict[str, Any]) -> PlatformError:
    with pytest.raises(PlatformError) as exc:
        load(schema, body)
    assert exc.value.status == 400
    return exc.value


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"seed": 2**70}, "seed"),
        ({"seed": 2**63 - 1}, "seed"),  # seed + j must stay 64-bit
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"max_tokens": "2"}, "max_tokens"),
        ({"max_completion_tokens": 2**63}, "max_completion_tokens"),
        ({"n": 2.0}, "n"),
        ({"stream": "yes"}, "stream"),
        ({"stream": 1}, "stream"),
        ({"stream_options": {"include_usage": "true"}}, "stream_options.include_usage"),
        ({"metadata": {"k": "v\x00"}}, "metadata.k"),
        ({"user": "a\ud800"}, "user"),
    ],
)
def test_chat_refuses(extra: dict[str, Any], param: str) -> None:
    assert refused(ChatCompletionCreateRequestSchema(), chat(**extra)).param == param


@pytest.mark.parametrize(
    ("role", "param"), [("tool", "messages[0].tool_call_id"), ("function", "messages[0].role")]
)
def test_malformed_tool_roles_are_refused_naming_the_field(role: str, param: str) -> None:
    # A tool result must say which call it answers; the legacy function role is refused.
    body = {"model": "m", "messages": [{"role": role, "content": "x"}]}
    err = refused(ChatCompletionCreateRequestSchema(), body)
    assert err.param == param


def test_good_values_still_load() -> None:
    loaded = load(
        ChatCompletionCreateRequestSchema(), chat(seed=-(2**63), max_tokens=7, stream=True)
    )
    assert loaded["seed"] == -(2**63) and loaded["max_tokens"] == 7 and loaded["stream"] is True


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "a\x00"}, "input"),
        ({"instructions": "\x00"}, "instructions"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_text", "text": "\udfff"}]}]},
            "input[0].content[0].text",
        ),
        ({"max_output_tokens": 2**63}, "max_output_tokens"),
        ({"background": "true"}, "background"),
    ],
)
def test_responses_refuse(body: dict[str, Any], param: str) -> None:
    schema = ResponseCreateRequestSchema()
    assert refused(schema, {"model": "m", "input": "hi", **body}).param == param


def test_deep_nesting_is_refused_without_recursion() -> None:
    value: Any = "x"
    for _ in range(100_000):
        value = [value]
    with pytest.raises(PlatformError) as exc:
        check_json({"messages": value})
    assert exc.value.code == "invalid_json"


def test_nul_in_a_key_names_its_parent() -> None:
    with pytest.raises(PlatformError) as exc:
        check_json({"metadata": {"a\x00": "b"}})
    assert exc.value.param == "metadata"


def _validator() -> LineValidator:
    from inference_platform.generation import CHAT

    return LineValidator(CHAT, line_checks()[CHAT], lambda m: True, 100)


def test_batch_line_with_lone_surrogate_custom_id_is_a_line_error() -> None:
    v = _validator()
    raw = b'{"custom_id": "a\\ud800", "method": "POST", "url": "/v1/chat/completions", "body": {}}'
    assert v.check(3, raw) is None
    assert [(e.line, e.param) for e in v.errors] == [(3, "custom_id")]


def test_batch_line_nested_50000_deep_is_a_line_error() -> None:
    v = _validator()
    assert v.check(1, b'{"custom_id": "x", "body": ' + b"[" * 50_000 + b"]" * 50_000 + b"}") is None
    assert v.errors[0].code == "invalid_json_line" and v.errors[0].line == 1
