"""Tenant limits as a client meets them: 429 in the OpenAI envelope with OpenAI's headers,
the SDK's own retry after ``Retry-After``, in-flight and batch-line limits."""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
import openai

from inference_platform.keys import create_key
from inference_platform.limits.config import set_limits
from tests.conftest import SIM, SIM_SLOW
from tests.helpers import chat_line, jsonl

TRIOS = ("requests", "tokens")


def _tenant(db: Any, **limits: int) -> str:
    tenant = "limited-" + secrets.token_hex(4)
    set_limits(db, tenant, "*", dict(limits))
    key, _ = create_key(db, tenant=tenant, name="limits test")
    return key


def _chat(model: str = SIM, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 4,
        **extra,
    }


def test_sixth_request_of_a_minute_gets_429_and_the_sdk_retries_after_it(
    stack: Any, db: Any
) -> None:
    key = _tenant(db, requests_per_minute=5)
    headers = {"Authorization": f"Bearer {key}"}
    url = f"{stack.base_url}/chat/completions"
    with httpx.Client(timeout=30) as http:
        for i in range(5):
            r = http.post(url, json=_chat(), headers=headers)
            assert r.status_code == 200, r.text
            assert r.headers["x-ratelimit-limit-requests"] == "5"
            assert r.headers["x-ratelimit-remaining-requests"] == str(4 - i)
            assert all(f"x-ratelimit-reset-{kind}" in r.headers for kind in TRIOS)
        sixth = http.post(url, json=_chat(), headers=headers)
        assert sixth.status_code == 429
        error = sixth.json()["error"]
        assert error["code"] == "rate_limit_exceeded" and error["type"] == "rate_limit_error"
        assert sixth.headers["x-ratelimit-remaining-requests"] == "0"
        assert 1 <= int(sixth.headers["Retry-After"]) <= 12
        for kind in TRIOS:
            assert {f"x-ratelimit-{h}-{kind}" for h in ("limit", "remaining", "reset")} <= set(
                k.lower() for k in sixth.headers
            )
        # Routes that take no budget report the tenant's budgets too.
        models = http.get(f"{stack.base_url}/models", headers=headers)
        assert models.headers["x-ratelimit-limit-requests"] == "5"

    # The SDK, unchanged, waits for Retry-After (one request refills every 12 s) and succeeds.
    with openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=2, timeout=60) as c:
        started = time.monotonic()
        raw = c.chat.completions.with_raw_response.create(**_chat())
    waited = time.monotonic() - started
    assert raw.http_response.status_code == 200 and raw.retries_taken >= 1
    assert waited >= 5, waited


def test_a_request_larger_than_the_token_budget_is_refused_without_retry(
    stack: Any, db: Any
) -> None:
    key = _tenant(db, tokens_per_minute=100)
    r = httpx.post(
        f"{stack.base_url}/chat/completions",
        json=_chat(max_tokens=500),
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert r.status_code == 429 and r.headers["x-should-retry"] == "false"
    assert "Request too large" in r.json()["error"]["message"]


def test_realtime_requests_in_flight_are_capped(stack: Any, db: Any) -> None:
    key = _tenant(db, concurrent_requests=1)
    headers = {"Authorization": f"Bearer {key}"}
    url = f"{stack.base_url}/chat/completions"
    with httpx.Client(timeout=30) as http:
        with http.stream(
            "POST", url, json=_chat(SIM_SLOW, max_tokens=30, stream=True), headers=headers
        ) as open_stream:
            assert open_stream.status_code == 200
            second = http.post(url, json=_chat(SIM_SLOW), headers=headers)
            assert second.status_code == 429, second.text
            assert "in flight" in second.json()["error"]["message"]
            assert "Retry-After" in second.headers
            open_stream.read()
        # The slot came back when the stream closed.
        third = http.post(url, json=_chat(SIM_SLOW), headers=headers)
        assert third.status_code == 200, third.text


def test_batch_past_the_enqueued_lines_limit_is_refused(stack: Any, db: Any) -> None:
    key = _tenant(db, enqueued_batch_lines=2)
    lines = [chat_line(f"q{i}") for i in range(3)]
    try:
        with openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0) as client:
            f = client.files.create(file=("b.jsonl", jsonl(lines)), purpose="batch")
            client.batches.create(
                input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
    except openai.RateLimitError as exc:
        assert exc.code == "rate_limit_exceeded" and exc.param == "input_file_id"
        assert "Enqueued batch lines limit" in exc.message
        assert exc.response.headers["x-should-retry"] == "false"
    else:
        raise AssertionError("a batch past the limit was accepted")
