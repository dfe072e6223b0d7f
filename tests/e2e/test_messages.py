"""Anthropic's Messages API through the official ``anthropic`` SDK, unchanged but for the base
URL: sync and async, ``messages.stream``, flex, token counting and the error shape."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import anthropic
import httpx
import pytest
from sqlalchemy import select

from inference_platform.db.models import Request, UsageRecord
from inference_platform.keys import create_key
from inference_platform.limits.config import set_limits
from tests.conftest import DEMO, SIM
from tests.helpers import eventually
from tests.stack import Stack

pytestmark = pytest.mark.e2e

HELLO = [{"role": "user", "content": "Say hello"}]


def _root(stack: Stack) -> str:
    return stack.base_url.removesuffix("/v1")


@pytest.fixture
def claude(stack: Stack, api_key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=_root(stack), api_key=api_key, max_retries=0, timeout=60)


def test_create_on_the_demo_model(claude: anthropic.Anthropic, db: Any) -> None:
    kw: dict[str, Any] = {
        "model": DEMO,
        "max_tokens": 12,
        "system": "Be brief.",
        "messages": HELLO,
        # Sampling fields are not in the SDK's signature any more: sent as extra body.
        "extra_body": {"temperature": 0},
    }
    message = claude.messages.create(**kw)
    assert message.id.startswith("msg_") and message.type == "message"
    assert message.role == "assistant" and message.model == DEMO
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.input_tokens > 0 and 0 < message.usage.output_tokens <= 12
    assert message.usage.service_tier == "standard"
    # Greedy decoding: the same request, with system as text blocks, gives the same text.
    again = claude.messages.create(**{**kw, "system": [{"type": "text", "text": "Be brief."}]})
    assert again.content[0].text == message.content[0].text

    def recorded() -> UsageRecord | None:
        with db.session() as s:
            query = select(UsageRecord).where(UsageRecord.request_id == message.id)
            return s.scalars(query).first()

    row = eventually(recorded, timeout=5, what="the usage record")
    assert row is not None and row.tier == "realtime" and row.owner == "tenant-a"
    assert row.output_tokens == message.usage.output_tokens


def test_sampling_fields_and_max_tokens(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model=SIM,
        max_tokens=3,
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "Tell me a long story"}]},
            {"role": "assistant", "content": "Once"},
            {"role": "user", "content": "Go on"},
        ],
        extra_body={"temperature": 0.5, "top_p": 0.9},
        stop_sequences=["zzz-never"],
        metadata={"user_id": "u-1"},
    )
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 3
    # top_k reaches the engine: one that cannot honour it says so, naming it.
    with pytest.raises(anthropic.BadRequestError) as err:
        claude.messages.create(model=SIM, max_tokens=3, messages=HELLO, extra_body={"top_k": 5})
    assert "top_k" in err.value.body["error"]["message"]  # type: ignore[index]


def test_stream_event_sequence_and_helper(claude: anthropic.Anthropic) -> None:
    kw: dict[str, Any] = {
        "model": DEMO,
        "max_tokens": 10,
        "messages": HELLO,
        "extra_body": {"temperature": 0},
    }
    whole = claude.messages.create(**kw)
    kinds = [event.type for event in claude.messages.create(**kw, stream=True)]
    assert kinds[0] == "message_start"
    assert kinds[1] == "content_block_start" and kinds[-3] == "content_block_stop"
    assert set(kinds[2:-3]) == {"content_block_delta"}
    assert kinds[-2:] == ["message_delta", "message_stop"]
    with claude.messages.stream(**kw) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == whole.content[0].text == final.content[0].text
    assert final.stop_reason == whole.stop_reason
    assert final.usage.input_tokens == whole.usage.input_tokens
    assert final.usage.output_tokens == whole.usage.output_tokens


def test_async_client_and_async_stream(stack: Stack, api_key: str) -> None:
    async def run() -> tuple[Any, str, Any]:
        client = anthropic.AsyncAnthropic(base_url=_root(stack), api_key=api_key, max_retries=0)
        kw: dict[str, Any] = {"model": SIM, "max_tokens": 6, "messages": HELLO}
        try:
            whole, streamed = await asyncio.gather(
                client.messages.create(**kw), _async_stream(client, kw)
            )
        finally:
            await client.close()
        return whole, streamed[0], streamed[1]

    whole, text, final = asyncio.run(run())
    assert text == whole.content[0].text == final.content[0].text
    assert final.usage.output_tokens == whole.usage.output_tokens == 6


async def _async_stream(client: anthropic.AsyncAnthropic, kw: dict[str, Any]) -> tuple[str, Any]:
    async with client.messages.stream(**kw) as stream:
        text = "".join([t async for t in stream.text_stream])
        return text, await stream.get_final_message()


def test_flex_through_extra_body(claude: anthropic.Anthropic, db: Any) -> None:
    """An Anthropic client asks for flex with the platform's ``service_tier``."""
    kw: dict[str, Any] = {"model": SIM, "max_tokens": 5, "messages": HELLO}
    message = claude.messages.create(**kw, extra_body={"service_tier": "flex"})
    assert message.usage.service_tier == "flex"
    assert message.content[0].text and message.usage.output_tokens == 5
    with db.session() as s:
        row = s.get(Request, message.id)
    assert row is not None and row.tier == "flex" and row.status == "completed"
    with claude.messages.stream(**kw, extra_body={"service_tier": "flex"}) as stream:
        assert "".join(stream.text_stream) == message.content[0].text


@pytest.mark.parametrize("model", [DEMO, SIM])
def test_count_tokens_matches_the_request(claude: anthropic.Anthropic, model: str) -> None:
    kw: dict[str, Any] = {
        "model": model,
        "system": "You are terse.",
        "messages": [
            {"role": "user", "content": "Hi there"},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]},
            {"role": "user", "content": "How are you?"},
        ],
    }
    counted = claude.messages.count_tokens(**kw)
    message = claude.messages.create(**kw, max_tokens=2)
    assert counted.input_tokens == message.usage.input_tokens > 0


def test_bearer_auth_and_bad_keys(stack: Stack, api_key: str) -> None:
    bearer = anthropic.Anthropic(base_url=_root(stack), auth_token=api_key, max_retries=0)
    assert bearer.messages.create(model=SIM, max_tokens=2, messages=HELLO).content
    wrong = anthropic.Anthropic(base_url=_root(stack), api_key="sk-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as err:
        wrong.messages.create(model=SIM, max_tokens=2, messages=HELLO)
    assert err.value.body["type"] == "error"  # type: ignore[index]
    assert err.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]


def _error(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert set(body) == {"type", "error"} and body["type"] == "error", body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


BAD_BODIES: list[tuple[dict[str, Any], str]] = [
    ({"model": SIM, "messages": HELLO}, "max_tokens"),
    ({"model": SIM, "max_tokens": 0, "messages": HELLO}, "max_tokens"),
    ({"model": SIM, "max_tokens": 4, "messages": []}, "messages"),
    ({"model": SIM, "max_tokens": 4, "messages": [{"role": "system", "content": "x"}]}, "role"),
    (
        {
            "model": SIM,
            "max_tokens": 4,
            "messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}],
        },
        "image",
    ),
    ({"model": SIM, "max_tokens": 4, "messages": HELLO, "temperature": 1.5}, "temperature"),
    ({"model": SIM, "max_tokens": 4, "messages": HELLO, "stop_sequences": "x"}, "stop_sequences"),
    (
        {"model": SIM, "max_tokens": 4, "messages": HELLO, "thinking": {"type": "enabled"}},
        "thinking",
    ),
    ({"model": SIM, "max_tokens": 4, "messages": HELLO, "bogus": 1}, "bogus"),
    (
        {"model": SIM, "max_tokens": 4, "messages": HELLO, "tool_choice": {"type": "any"}},
        "tool_choice",
    ),
    ({"model": SIM, "max_tokens": 4, "messages": HELLO, "stream": "yes"}, "stream"),
]


@pytest.mark.parametrize(("body", "named"), BAD_BODIES)
def test_bad_input_gets_anthropic_400(
    stack: Stack, api_key: str, body: dict[str, Any], named: str
) -> None:
    url = f"{stack.base_url}/messages"
    response = httpx.post(url, json=body, headers={"x-api-key": api_key}, timeout=30)
    assert response.status_code == 400
    error = _error(response)
    assert error["type"] == "invalid_request_error" and named in error["message"]


def test_other_errors_keep_the_anthropic_shape(
    claude: anthropic.Anthropic, stack: Stack, api_key: str
) -> None:
    with pytest.raises(anthropic.NotFoundError) as err:
        claude.messages.create(model="no-such-model", max_tokens=2, messages=HELLO)
    assert err.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    headers = {"x-api-key": api_key, "content-type": "application/json"}
    url = f"{stack.base_url}/messages"
    checks = [
        (httpx.get(url, headers=headers), 405),
        (httpx.post(url, content=b"{not json", headers=headers), 400),
        (httpx.post(url, json=[1, 2], headers=headers), 400),
        (httpx.post(f"{url}/count_tokens", json={"model": SIM}, headers=headers), 400),
        (httpx.post(url, json={"model": SIM, "max_tokens": 1, "messages": HELLO}), 401),
        (httpx.get(f"{url}/batches/batch_nope", headers=headers), 404),
    ]
    for response, status in checks:
        assert response.status_code == status, response.text
        _error(response)


def test_tools_on_an_engine_without_them_are_a_clear_400(claude: anthropic.Anthropic) -> None:
    tool = {"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}
    with pytest.raises(anthropic.BadRequestError) as err:
        claude.messages.create(
            model=DEMO,
            max_tokens=8,
            messages=HELLO,
            tools=[tool],  # type: ignore[list-item]
            tool_choice={"type": "tool", "name": "get_weather"},
        )
    assert err.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    # Left to choose (auto, the default), a model needs its tool-call parser: said plainly.
    with pytest.raises(anthropic.BadRequestError) as auto:
        claude.messages.create(
            model=DEMO,
            max_tokens=8,
            messages=HELLO,
            tools=[tool],  # type: ignore[list-item]
        )
    assert "`any` or `tool`" in auto.value.body["error"]["message"]  # type: ignore[index]


def test_tenant_limits_apply_in_anthropic_shape(stack: Stack, db: Any) -> None:
    tenant = "limited-" + secrets.token_hex(4)
    set_limits(db, tenant, "*", {"requests_per_minute": 2})
    key, _ = create_key(db, tenant=tenant, name="messages limits")
    limited = anthropic.Anthropic(base_url=_root(stack), api_key=key, max_retries=0)
    for _ in range(2):
        limited.messages.create(model=SIM, max_tokens=2, messages=HELLO)
    with pytest.raises(anthropic.RateLimitError) as err:
        limited.messages.create(model=SIM, max_tokens=2, messages=HELLO)
    assert err.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert err.value.response.headers.get("retry-after")
