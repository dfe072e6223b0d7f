"""Object builders produce what the official SDK's models expect."""

from __future__ import annotations

from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from inference_platform.errors import PlatformError, model_not_found
from inference_platform.openai import chat, completions
from inference_platform.tiers import reported_tier, tier_for


def test_chat_completion_has_every_required_field() -> None:
    obj = chat.completion(
        id="chatcmpl-1",
        created=1,
        model="m",
        choices=[("hi", "length")],
        prompt_tokens=3,
        completion_tokens=1,
        service_tier="default",
    )
    parsed = ChatCompletion.model_validate(obj)
    assert parsed.choices[0].message.content == "hi"
    assert parsed.choices[0].finish_reason == "length"
    assert parsed.usage is not None and parsed.usage.total_tokens == 4
    assert obj["choices"][0]["message"]["refusal"] is None


def test_chat_chunks() -> None:
    first = chat.chunk(
        id="c",
        created=1,
        model="m",
        service_tier="default",
        choices=[chat.delta_choice(0, {"role": "assistant", "content": ""})],
        include_usage=True,
    )
    assert first["usage"] is None
    parsed = ChatCompletionChunk.model_validate(first)
    assert parsed.choices[0].delta.role == "assistant"
    no_usage = chat.chunk(
        id="c", created=1, model="m", service_tier="default", choices=[], include_usage=False
    )
    assert "usage" not in no_usage


def test_text_completion() -> None:
    obj = completions.completion(
        id="cmpl-1",
        created=1,
        model="m",
        choices=[("a", "stop")],
        prompt_tokens=1,
        completion_tokens=1,
    )
    assert Completion.model_validate(obj).choices[0].text == "a"
    chunk = completions.completion(
        id="cmpl-1",
        created=1,
        model="m",
        choices=[("a", None)],
        prompt_tokens=None,
        completion_tokens=None,
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
