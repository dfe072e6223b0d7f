"""Object builders produce what the official SDK's models expect."""

from __future__ import annotations

from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from inference_platform.endpoints.chat_completions.protocol import (
    chat_completion,
    chat_completion_chunk,
    chunk_choice,
)
from inference_platform.endpoints.completions.protocol import text_completion, text_completion_chunk
from inference_platform.errors import PlatformError, model_not_found
from inference_platform.events import Usage
from inference_platform.tiers import reported_tier, tier_for


def test_chat_completion_has_every_required_field() -> None:
    obj = chat_completion(
        id="chatcmpl-1",
        created=1,
        model="m",
        choices=[("hi", "length")],
        usage=Usage(3, 1),
        service_tier="default",
    )
    parsed = ChatCompletion.model_validate(obj)
    assert parsed.choices[0].message.content == "hi"
    assert parsed.choices[0].finish_reason == "length"
    assert parsed.usage is not None and parsed.usage.total_tokens == 4
    assert obj["choices"][0]["message"]["refusal"] is None


def test_chat_chunks() -> None:
    first = chat_completion_chunk(
        id="c",
        created=1,
        model="m",
        service_tier="default",
        choices=[chunk_choice(0, {"role": "assistant", "content": ""})],
        include_usage=True,
    )
    assert first["usage"] is None
    parsed = ChatCompletionChunk.model_validate(first)
    assert parsed.choices[0].delta.role == "assistant"
    no_usage = chat_completion_chunk(
        id="c", created=1, model="m", service_tier="default", choices=[], include_usage=False
    )
    assert "usage" not in no_usage


def test_text_completion() -> None:
    obj = text_completion(
        id="cmpl-1",
        created=1,
        model="m",
        body={"prompt": "p", "n": 1},
        choices=[("a", "stop")],
        usage=Usage(1, 1),
        service_tier="default",
    )
    assert Completion.model_validate(obj).choices[0].text == "a"
    chunk = text_completion_chunk(
        id="cmpl-1", created=1, model="m", choice=(0, "a", None), include_usage=False
    )
    assert "usage" not in chunk


def test_error_envelope_has_all_four_keys() -> None:
    env = model_not_found("x").envelope()["error"]
    assert set(env) == {"message", "type", "param", "code"}
    assert env["code"] == "model_not_found" and env["type"] == "not_found_error"
    assert PlatformError(503, "down").envelope()["error"]["type"] == "server_error"


def test_tiers() -> None:
    assert tier_for("flex") == "flex" and tier_for(None) == "realtime"
    assert tier_for("priority") == "realtime"
    assert reported_tier("fast") == "priority" and reported_tier("auto") == "default"
    assert reported_tier("flex") == "flex"
