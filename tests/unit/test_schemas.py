"""Request schemas: what is accepted, and the param a 400 names."""

from __future__ import annotations

from typing import Any

import pytest

from inference_platform.endpoints.chat_completions.protocol import (
    ChatCompletionCreateRequestSchema,
)
from inference_platform.endpoints.completions.protocol import CompletionCreateRequestSchema
from inference_platform.endpoints.protocol import load
from inference_platform.errors import PlatformError

CHAT = ChatCompletionCreateRequestSchema()
COMPLETION = CompletionCreateRequestSchema()


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}


def rejected(schema: Any, body: dict[str, Any]) -> PlatformError:
    with pytest.raises(PlatformError) as err:
        load(schema, body)
    assert err.value.status == 400
    return err.value


def test_chat_defaults_and_passthrough() -> None:
    body = load(CHAT, chat(temperature=0.5, stop="x", seed=3, service_tier="flex"))
    assert body["n"] == 1 and body["stream"] is False
    assert (body["temperature"], body["stop"], body["seed"]) == (0.5, "x", 3)
    text_part = {"type": "text", "text": "a"}
    parts = load(CHAT, chat(messages=[{"role": "user", "content": [text_part]}]))
    assert parts["messages"][0]["content"][0]["text"] == "a"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"temperature": 3}, "temperature"),
        ({"top_p": -1}, "top_p"),
        ({"n": 0}, "n"),
        ({"n": None}, "n"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"service_tier": "gold"}, "service_tier"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages[0]"),
        ({"tools": "search"}, "tools"),
        ({"logprobs": 1}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"presence_penalty": 3.0}, "presence_penalty"),
        ({"response_format": {"type": "xml"}}, "response_format"),
        ({"wat": 1}, "wat"),
    ],
)
def test_chat_rejections_name_the_param(extra: dict[str, Any], param: str) -> None:
    assert rejected(CHAT, chat(**extra)).param == param


def test_chat_requires_model() -> None:
    body = chat()
    del body["model"]
    assert rejected(CHAT, body).param == "model"


def test_defaults_of_unsupported_fields_are_accepted() -> None:
    body = load(
        CHAT,
        chat(reasoning_effort=None, tools=[], presence_penalty=0, response_format={"type": "text"}),
    )
    assert "reasoning_effort" not in body and body["tools"] == []


def test_completion_prompts() -> None:
    assert load(COMPLETION, {"model": "m", "prompt": "x"})["max_tokens"] == 16
    assert load(COMPLETION, {"model": "m", "prompt": ["a", "b"], "n": 2})["n"] == 2
    err = rejected(COMPLETION, {"model": "m", "prompt": [1, 2, 3]})
    assert err.param == "prompt" and "token-id" in err.message
    assert rejected(COMPLETION, {"model": "m", "prompt": "x", "suffix": "y"}).param == "suffix"
