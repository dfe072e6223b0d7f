"""What batch lines record: success bodies and error envelopes."""

from __future__ import annotations

from inference_platform.batches import outputs
from inference_platform.engines.base import ContextLengthError
from inference_platform.errors import PlatformError
from inference_platform.generation import CHAT, COMPLETIONS, Choice, GenerationResult

LINE_ID = "batch_req_" + "ab" * 16


def _result(*texts: str, prompt_of: list[int] | None = None) -> GenerationResult:
    choices = [Choice(t, "length", prompt_tokens=4, completion_tokens=2) for t in texts]
    return GenerationResult(choices, prompt_of or [0] * len(texts))


def test_chat_body_is_a_chat_completion() -> None:
    body = outputs.success_body(CHAT, LINE_ID, "m", {"messages": []}, _result("hi", "yo"), 1700)
    assert body["id"] == "chatcmpl-" + "ab" * 16 and body["object"] == "chat.completion"
    assert body["created"] == 1700 and body["model"] == "m"
    assert [c["message"]["content"] for c in body["choices"]] == ["hi", "yo"]
    assert body["choices"][1]["index"] == 1 and body["choices"][0]["finish_reason"] == "length"
    # Two choices of one prompt: the prompt is billed once.
    assert body["usage"]["prompt_tokens"] == 4 and body["usage"]["completion_tokens"] == 4
    assert body["usage"]["total_tokens"] == 8


def test_completion_body_with_echo_and_several_prompts() -> None:
    request = {"prompt": ["a", "b"], "n": 1, "echo": True}
    body = outputs.success_body(
        COMPLETIONS, LINE_ID, "m", request, _result(" x", " y", prompt_of=[0, 1]), 1700
    )
    assert body["object"] == "text_completion" and body["id"].startswith("cmpl-")
    assert [c["text"] for c in body["choices"]] == ["a x", "b y"]
    assert body["usage"]["prompt_tokens"] == 8


def test_error_bodies_are_openai_envelopes() -> None:
    status, body = outputs.error_body(ContextLengthError("too long"))
    assert status == 400
    assert body == {
        "error": {
            "message": "too long",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
    }
    status, body = outputs.error_body(RuntimeError("boom"))
    assert status == 500 and body["error"]["code"] == "server_error"
    assert "boom" not in body["error"]["message"]  # internals stay in the logs
    status, _ = outputs.error_body(PlatformError(404, "gone"))
    assert status == 404
