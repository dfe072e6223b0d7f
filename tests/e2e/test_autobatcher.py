"""The autobatcher client and its proxy against the real stack: batches formed by size and
window, every caller its own answer (as partial results show it), per-line errors as the SDK's
exceptions, a batch cancelled from outside, close() with calls pending, credentials from the
environment, flex mode, and the local proxy serving an unmodified ``openai.OpenAI``."""

from __future__ import annotations

import ast
import asyncio
import json
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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
FAST: dict[str, Any] = {"batch_window_seconds": 0.5, "poll_interval_seconds": 0.3}


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


def test_a_batch_cancelled_from_outside_fails_only_its_unfinished_callers(
    stack: Stack, api_key: str, client: openai.OpenAI
) -> None:
    seen = Events()
    n = 24
    answered_before_cancel: list[int] = []

    async def main() -> list[Any]:
        async with BatchOpenAI(
            api_key=api_key, base_url=stack.base_url, batch_size=n, on_event=seen, **FAST
        ) as ab:
            calls = [
                asyncio.ensure_future(
                    ab.chat.completions.create(**ask(i, model=SIM_SLOW, max_tokens=10))
                )
                for i in range(n)
            ]
            while sum(c.done() for c in calls) < 2:  # answered while the batch still runs
                await asyncio.sleep(0.05)
            answered_before_cancel.append(sum(c.done() for c in calls))
            (submitted,) = seen.of("batch_submitted")
            await asyncio.to_thread(client.batches.cancel, str(submitted.batch_id))
            return await asyncio.gather(*calls, return_exceptions=True)

    results = run(main)
    (submitted,) = seen.of("batch_submitted")
    batch = eventually(
        lambda: client.batches.retrieve(str(submitted.batch_id)), lambda b: b.status in TERMINAL
    )
    assert batch.status == "cancelled"
    done = [r for r in results if isinstance(r, ChatCompletion)]
    cancelled = [r for r in results if isinstance(r, RequestCancelledError)]
    assert len(done) + len(cancelled) == n, results
    assert len(done) >= answered_before_cancel[0] >= 2 and cancelled
    assert all(e.batch_id == batch.id and e.code == "batch_cancelled" for e in cancelled)
    assert batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (
        len(done),
        len(cancelled),
    )


def test_close_fails_pending_calls_and_never_leaves_one_waiting(
    stack: Stack, api_key: str, client: openai.OpenAI
) -> None:
    seen = Events()

    async def main() -> tuple[list[Any], list[Any]]:
        # Not sent yet: the window is far away.
        waiting = BatchOpenAI(api_key=api_key, base_url=stack.base_url, batch_window_seconds=600)
        queued = [
            asyncio.ensure_future(waiting.chat.completions.create(**ask(i))) for i in range(3)
        ]
        await asyncio.sleep(0.2)
        await waiting.close()
        early = await asyncio.gather(*queued, return_exceptions=True)
        with pytest.raises(ClientClosedError):
            await waiting.chat.completions.create(**ask(9))
        # Sent and running: cancel_on_close cancels the batch upstream.
        running: list[Any] = []
        async with BatchOpenAI(
            api_key=api_key,
            base_url=stack.base_url,
            batch_size=12,
            cancel_on_close=True,
            on_event=seen,
            **FAST,
        ) as ab:
            running = [
                asyncio.ensure_future(
                    ab.chat.completions.create(**ask(i, model=SIM_SLOW, max_tokens=40))
                )
                for i in range(12)
            ]
            while not seen.of("batch_submitted"):
                await asyncio.sleep(0.05)
        late = await asyncio.gather(*running, return_exceptions=True)
        return early, late

    early, late = run(main, timeout=60)
    assert all(isinstance(r, ClientClosedError) for r in early), early
    assert "before the request was sent" in str(early[0])
    assert all(
        isinstance(r, ChatCompletion | RequestCancelledError | ClientClosedError) for r in late
    )
    assert any(not isinstance(r, ChatCompletion) for r in late)
    (submitted,) = seen.of("batch_submitted")
    status = client.batches.retrieve(str(submitted.batch_id)).status
    assert status in ("cancelling", "cancelled")
    assert seen.of("closed")[0].detail["cancelled"] is True


def test_credentials_from_the_environment_only(
    stack: Stack, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", stack.base_url)

    async def main() -> tuple[ChatCompletion, ChatCompletion, Response]:
        async with BatchOpenAI(**FAST) as batch, AsyncOpenAI(poll_interval_seconds=0.3) as flex:
            return await asyncio.gather(
                batch.chat.completions.create(**ask(7)),
                flex.chat.completions.create(**ask(8)),
                flex.responses.create(model=SIM, input="hello", max_output_tokens=5),
            )

    batched, flexed, response = run(main)
    assert (
        isinstance(batched, ChatCompletion)
        and batched.usage
        and batched.usage.completion_tokens == 5
    )
    assert isinstance(flexed, ChatCompletion) and flexed.service_tier == "flex"
    assert isinstance(response, Response) and response.service_tier == "flex"


def test_flex_mode_runs_background_flex_responses(
    stack: Stack, api_key: str, client: openai.OpenAI
) -> None:
    seen = Events()

    async def main() -> list[Any]:
        async with AsyncOpenAI(
            api_key=api_key, base_url=stack.base_url, poll_interval_seconds=0.3, on_event=seen
        ) as flex:
            chats = await asyncio.gather(
                *(flex.chat.completions.create(**ask(i)) for i in range(5))
            )
            rest = await asyncio.gather(
                flex.completions.create(model=SIM, prompt="Once", max_tokens=3),
                flex.chat.completions.create(**ask(1, stop=["zzz"])),  # no Responses twin
                flex.chat.completions.create(**ask(2, temperature=5)),
                return_exceptions=True,
            )
            return [*chats, *rest]

    results = run(main)
    chats, (text, stopped, bad) = results[:5], results[5:]
    for i, chat in enumerate(chats):
        assert isinstance(chat, ChatCompletion) and chat.object == "chat.completion"
        assert chat.usage and chat.usage.completion_tokens == 3 + i % 5
        assert chat.choices[0].finish_reason == "length" and chat.choices[0].message.content
    assert isinstance(text, Completion) and isinstance(stopped, ChatCompletion)
    assert isinstance(bad, openai.BadRequestError)
    submitted = seen.of("flex_submitted")
    assert len(submitted) == 5
    stored = client.responses.retrieve(submitted[0].detail["response_id"])
    assert stored.background and stored.service_tier == "flex" and stored.status == "incomplete"


@pytest.fixture
def proxy(stack: Stack, api_key: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    env = {**stack.env(), "OPENAI_API_KEY": api_key, "OPENAI_BASE_URL": stack.base_url}
    proc = subprocess.Popen(
        [*CLI, "autobatcher", "serve", "--mode", "batch", "--port", str(port)]
        + ["--batch-window", "0.5", "--poll-interval", "0.3", "--batch-metadata", "team=evals"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        eventually(
            lambda: httpx.get(f"{base}/health", timeout=2).json()["mode"] == "batch",
            ignoring=(httpx.HTTPError,),
            what="the proxy",
        )
        yield f"{base}/v1", proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        assert proc.stdout is not None
        proc.stdout.close()


def test_the_proxy_serves_an_unmodified_openai_client(
    proxy: tuple[str, subprocess.Popen[str]], client: openai.OpenAI
) -> None:
    base_url, proc = proxy
    plain = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=60)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: plain.chat.completions.create(**ask(i)), range(8)))
    for i, answer in enumerate(answers):
        assert answer.usage and answer.usage.completion_tokens == 3 + i % 5
        direct = client.chat.completions.create(**ask(i))
        assert answer.choices[0].message.content == direct.choices[0].message.content
    with pytest.raises(openai.BadRequestError) as bad:
        plain.chat.completions.create(**ask(1, temperature=5))
    assert bad.value.param == "temperature"
    with pytest.raises(openai.BadRequestError, match="stream"):
        plain.chat.completions.create(**ask(1), stream=True)
    proc.terminate()
    assert proc.stdout is not None
    lines = [json.loads(x) for x in proc.stdout.read().splitlines() if x.startswith("{")]
    kinds = [x["event"] for x in lines]
    assert kinds[0] == "listening" and "batch_submitted" in kinds and "batch_done" in kinds
    batch_id = next(x["batch_id"] for x in lines if x["event"] == "batch_submitted")
    assert client.batches.retrieve(batch_id).metadata == {"team": "evals"}


def test_the_autobatcher_imports_only_the_sdk_and_itself() -> None:
    package = ROOT / "inference_platform" / "autobatcher"
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                if name.startswith("inference_platform"):
                    assert name.startswith("inference_platform.autobatcher"), (path.name, name)


def test_max_concurrent_requests_holds_back_the_rest(stack: Stack, api_key: str) -> None:
    seen = Events()

    async def main() -> list[ChatCompletion]:
        async with BatchOpenAI(
            api_key=api_key,
            base_url=stack.base_url,
            batch_size=10,
            max_concurrent_requests=2,
            on_event=seen,
            **FAST,
        ) as client:
            return await asyncio.gather(
                *(client.chat.completions.create(**ask(i)) for i in range(5))
            )

    answers = run(main)
    assert [a.usage.completion_tokens if a.usage else 0 for a in answers] == [3, 4, 5, 6, 7]
    sizes = [e.detail["requests"] for e in seen.of("batch_submitted")]
    assert sum(sizes) == 5 and max(sizes) == 2  # never more than two calls out at once
