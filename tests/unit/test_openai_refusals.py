"""Requests OpenAI refuses are refused here too, with a 400 naming the param."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai
import pytest

from inference_platform.autobatcher.wire import retry_rate_limits
from inference_platform.endpoints.chat_completions.protocol import (
    ChatCompletionCreateRequestSchema,
)
from inference_platform.endpoints.files.protocol import FileCreateRequestSchema
from inference_platform.endpoints.protocol import load
from inference_platform.endpoints.responses.protocol import ResponseCreateRequestSchema
from inference_platform.endpoints.usage.protocol import MAX_TIME, UsageCompletionsRequestSchema
from inference_platform.endpoints.usage.serving import _pages
from inference_platform.errors import PlatformError
from inference_platform.ttl_cache import TtlCache

CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


def refused(schema: Any, body: dict[str, Any]) -> PlatformError:
    with pytest.raises(PlatformError) as err:
        load(schema, body)
    assert err.value.status == 400
    return err.value


def test_a_tool_message_needs_an_earlier_call_with_its_id() -> None:
    schema = ChatCompletionCreateRequestSchema()
    user = {"role": "user", "content": "hi"}
    orphan = {"role": "tool", "tool_call_id": "call_1", "content": "x"}
    err = refused(schema, {"model": "m", "messages": [user, orphan]})
    assert err.param == "messages[1].tool_call_id" and "preceding message" in err.message
    wrong = {"role": "assistant", "content": None, "tool_calls": [{**CALL, "id": "call_2"}]}
    assert refused(schema, {"model": "m", "messages": [user, wrong, orphan]}).param
    called = {"role": "assistant", "content": None, "tool_calls": [CALL]}
    load(schema, {"model": "m", "messages": [user, called, orphan]})


def test_a_function_call_output_needs_its_call_in_the_input() -> None:
    schema = ResponseCreateRequestSchema()
    output = {"type": "function_call_output", "call_id": "call_9", "output": "x"}
    err = refused(schema, {"model": "m", "input": [{"role": "user", "content": "q"}, output]})
    assert err.param == "input[1].call_id" and "call_9" in err.message
    call = {"type": "function_call", "call_id": "call_9", "name": "f", "arguments": "{}"}
    load(schema, {"model": "m", "input": [call, output]})
    # Continuing a stored response: the call is in that response's output.
    load(schema, {"model": "m", "previous_response_id": "resp_1", "input": [output]})


def test_fine_tune_uploads_are_refused() -> None:
    err = refused(FileCreateRequestSchema(), {"purpose": "fine-tune"})
    assert err.param == "purpose" and "fine-tune" in err.message
    assert load(FileCreateRequestSchema(), {"purpose": "batch"})["purpose"] == "batch"


def test_usage_times_past_year_9999_are_a_400() -> None:
    schema = UsageCompletionsRequestSchema()
    for name in ("start_time", "end_time"):
        err = refused(schema, {"start_time": 0, name: 1_000_000_000_000_000})
        assert err.param == name
    load(schema, {"start_time": 0, "end_time": MAX_TIME})


@pytest.mark.parametrize("cursor", ["bucket_٣", "bucket_３", "bucket_" + "9" * 5000, "bucket_-1"])
def test_a_usage_cursor_is_ascii_digits_only(cursor: str) -> None:
    args = {"start_time": 0, "end_time": 86400 * 10, "limit": None, "page": cursor}
    with pytest.raises(PlatformError) as err:
        _pages(args, 86400, (7, 31))
    assert err.value.param == "page"
    assert _pages({**args, "page": "bucket_3"}, 86400, (7, 31)).first == 3


def test_a_cleared_cache_keeps_no_answer_a_load_began_before_it() -> None:
    answers = iter(["valid", "revoked"])
    cache: TtlCache[str, str] = TtlCache(lambda key: next(answers), ttl=60)
    assert cache.get("k") == "valid" and cache.get("k") == "valid"  # cached
    cache.clear()
    assert cache.get("k") == "revoked"

    def load_then_revoked(key: str) -> str:
        racing.clear()  # a revocation arrives while this load is in flight
        return "valid"

    racing: TtlCache[str, str] = TtlCache(load_then_revoked, ttl=60)
    assert racing.get("k") == "valid"
    assert racing._entries == {}  # the next caller reads the database again


def _rate_limited(should_retry: str | None) -> openai.RateLimitError:
    headers = {"retry-after-ms": "1"}
    if should_retry is not None:
        headers["x-should-retry"] = should_retry
    request = httpx.Request("POST", "http://test/v1/responses")
    response = httpx.Response(429, headers=headers, json={"error": {}}, request=request)
    return openai.RateLimitError("limited", response=response, body=None)


@pytest.mark.parametrize(("header", "calls"), [("false", 1), (None, 3), ("true", 3)])
def test_the_autobatcher_honours_x_should_retry_and_caps_retries(
    header: str | None, calls: int
) -> None:
    made: list[int] = []

    async def call() -> None:
        made.append(1)
        raise _rate_limited(header)

    with pytest.raises(openai.RateLimitError):
        asyncio.run(retry_rate_limits(call, max_retries=2, default_wait=0.01))
    assert len(made) == calls
