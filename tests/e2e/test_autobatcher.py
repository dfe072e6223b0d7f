"""The autobatcher client and its proxy against the real stack: batches formed by size and
window, every caller its own answer (as partial results show it), per-line errors as the SDK's
exceptions, a batch cancelled from outside, close() with calls pending, credentials from the
environment, flex mode, and the local proxy serving an unmodified ``openai.OpenAI``."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import openai
import pytest
from openai.types import Completion
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from inference_platform.autobatcher import (
    AsyncOpenAI,
    BatchOpenAI,
    ClientClosedError,
    Event,
    RequestCancelledError,
    StreamingNotSupportedError,
)
from tests.conftest import SIM, SIM_SLOW
from tests.helpers import TERMINAL, eventually
from tests.stack import CLI, ROOT, Stack, free_port

pytestmark = pytest.mark.e2e

T = TypeVar("T")
FAST = {"batch_window_seconds": 0.5, "poll_interval_seconds": 0.3}


def run(main: Callable[[], Awaitable[T]], timeout: float = 120) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(main(), timeout)

    return asyncio.run(bounded())


def ask(i: int, model: str = SIM, **extra: Any) -> dict[str, Any]:
    """A chat request whose answer is specific to ``i`` (prompt, seed and length)."""
    return {
        "model": model,
        "messages": [{"role": "user", "content": f"say q{i}"}],
        "max_tokens": 3 + i % 5,
        "seed": i,
        **extra,
    }


class Events(list[Event]):
    def __call__(self, event: Event) -> None:
        self.append(event)

    def of(self, kind: str) -> list[Event]:
        return [e for e in self if e.kind == kind]


def test_500_calls_become_3_batches_and_each_caller_gets_its_own_answer(
    stack: Stack, api_key: str
) -> None:
    seen = Events()
    n = 500

    async def main() -> tuple[list[ChatCompletion], list[ChatCompletion]]:
        async with BatchOpenAI(
            api_key=api_key, base_url=stack.base_url, batch_size=200, on_event=seen, **FAST
        ) as client:
            assert isinstance(client, openai.AsyncOpenAI)
            got = await asyncio.gather(
                *(client.chat.completions.create(**ask(i)) for i in range(n))
            )
        direct = openai.AsyncOpenAI(api_key=api_key, base_url=stack.base_url)
        async with direct:
            sample = await asyncio.gather(
                *(direct.chat.completions.create(**ask(i)) for i in range(0, n, 25))
            )
        return got, sample

    got, sample = run(main)
    submitted = seen.of("batch_submitted")
    assert sorted(e.detail["requests"] for e in submitted) == [100, 200, 200]
    assert len({e.batch_id for e in submitted}) == 3
    for i, completion in enumerate(got):
        assert isinstance(completion, ChatCompletion)
        assert completion.usage is not None and completion.usage.completion_tokens == 3 + i % 5
        assert completion.choices[0].message.content
    # The same text a direct realtime call gives for the same request (the simulated model is
    # deterministic in prompt and seed), so no caller got another's line.
    for k, direct in enumerate(sample):
        assert got[25 * k].choices[0].message.content == direct.choices[0].message.content
    assert len({c.id for c in got}) == n


def test_bad_requests_raise_the_sdk_exception_only_for_themselves(
    stack: Stack, api_key: str
) -> None:
    seen = Events()

    async def main() -> list[Any]:
        async with BatchOpenAI(
            api_key=api_key, base_url=stack.base_url, on_event=seen, **FAST
        ) as client:
            calls = [
                client.chat.completions.create(**ask(0)),
                # Rejected by the batch's validation: the other lines go again without it.
                client.chat.completions.create(**ask(1, temperature=5)),
                client.chat.completions.create(**ask(2)),
                # Fails when it runs: a per-line 400 in the error file.
                client.chat.completions.create(
                    **ask(3, messages=[{"role": "user", "content": "w " * 9000}])
                ),
                # Another model: a batch of its own, refused as a whole.
                client.chat.completions.create(**ask(4, model="no-such-model")),
                client.completions.create(model=SIM, prompt="Once upon", max_tokens=4),
                client.chat.completions.with_raw_response.create(**ask(5)),
            ]
            return await asyncio.gather(*calls, return_exceptions=True)

    ok0, temp, ok2, too_long, unknown, text, raw = run(main)
    assert isinstance(ok0, ChatCompletion) and isinstance(ok2, ChatCompletion)
    assert isinstance(temp, openai.BadRequestError) and temp.param == "temperature", temp
    assert isinstance(too_long, openai.BadRequestError), too_long
    assert too_long.code == "context_length_exceeded"
    assert isinstance(unknown, openai.NotFoundError) and unknown.code == "model_not_found"
    assert isinstance(text, Completion) and text.usage and text.usage.completion_tokens == 4
    parsed = raw.parse()
    assert isinstance(parsed, ChatCompletion) and raw.headers["x-request-id"].startswith("req_")
    assert parsed._request_id == raw.headers["x-request-id"]
    # A direct call with the same bad temperature raises the same class.
    with pytest.raises(openai.BadRequestError):
        openai.OpenAI(api_key=api_key, base_url=stack.base_url).chat.completions.create(
            **ask(1, temperature=5)
        )
    assert seen.of("batch_resubmitted")
    endpoints = {e.detail["endpoint"] for e in seen.of("batch_submitted")}
    assert endpoints == {"/v1/chat/completions", "/v1/completions"}


def test_stream_is_refused_and_other_methods_pass_through(stack: Stack, api_key: str) -> None:
    async def main() -> None:
        async with BatchOpenAI(api_key=api_key, base_url=stack.base_url, **FAST) as client:
            with pytest.raises(StreamingNotSupportedError, match="stream=True"):
                await client.chat.completions.create(**ask(0), stream=True)
            with pytest.raises(StreamingNotSupportedError):
                await client.responses.create(model=SIM, input="hi", stream=True)
            models = await client.models.list()
            assert SIM in {m.id for m in models.data}
            copy = client.with_options(timeout=30)
            assert copy.autobatch_settings is client.autobatch_settings
            answer = await copy.responses.create(model=SIM, input="hello", max_output_tokens=4)
            assert isinstance(answer, Response) and answer.output_text

    run(main)
