"""The realtime path through the official openai SDK: API -> Celery -> engine worker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import openai
import pytest
from sqlalchemy import select

from inference_platform.db.models import UsageRecord
from tests.conftest import DEMO, SIM, SIM_SLOW
from tests.helpers import eventually

pytestmark = pytest.mark.e2e


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert DEMO in ids and SIM in ids
    model = client.models.retrieve(DEMO)
    assert model.id == DEMO and model.object == "model"
    with pytest.raises(openai.NotFoundError) as err:
        client.models.retrieve("no-such-model")
    assert err.value.code == "model_not_found"


def test_chat_completion_on_the_demo_model(client: openai.OpenAI, db) -> None:
    resp = client.chat.completions.create(
        model=DEMO,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        max_tokens=12,
        temperature=0,
        service_tier="priority",
    )
    assert resp.id.startswith("chatcmpl-")
    assert resp.object == "chat.completion"
    assert resp.model == DEMO
    assert resp.service_tier == "priority"
    choice = resp.choices[0]
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert resp.usage.prompt_tokens > 0
    assert 0 < resp.usage.completion_tokens <= 12
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    # Greedy decoding is deterministic: the same request gives the same text.
    again = client.chat.completions.create(
        model=DEMO,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        max_tokens=12,
        temperature=0,
    )
    assert again.choices[0].message.content == choice.message.content
    assert again.service_tier == "default"

    # The worker records usage after the fact, with its tier.
    def recorded() -> UsageRecord | None:
        with db.session() as s:
            return s.scalars(select(UsageRecord).where(UsageRecord.request_id == resp.id)).first()

    row = eventually(recorded, timeout=5, what="the usage record")
    assert row is not None and row.tier == "realtime" and row.owner == "tenant-a"
    assert row.output_tokens == resp.usage.completion_tokens


def test_chat_n_seed_and_stop(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model=DEMO,
        messages=[{"role": "user", "content": "Tell me a story"}],
        max_tokens=8,
        n=3,
        seed=7,
        temperature=1.0,
    )
    assert [c.index for c in resp.choices] == [0, 1, 2]
    again = client.chat.completions.create(
        model=DEMO,
        messages=[{"role": "user", "content": "Tell me a story"}],
        max_tokens=8,
        n=3,
        seed=7,
        temperature=1.0,
    )
    assert [c.message.content for c in again.choices] == [c.message.content for c in resp.choices]
    sim = client.chat.completions.create(
        model=SIM, messages=[{"role": "user", "content": "x"}], max_tokens=20
    )
    words = sim.choices[0].message.content.split()
    stopped = client.chat.completions.create(
        model=SIM, messages=[{"role": "user", "content": "x"}], max_tokens=20, stop=[words[3]]
    )
    assert stopped.choices[0].finish_reason == "stop"
    assert words[3] not in stopped.choices[0].message.content


def test_chat_stream_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=DEMO,
        messages=[{"role": "user", "content": "Stream please"}],
        max_tokens=16,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("stop", "length") and all(f is None for f in finishes[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-1].usage.completion_tokens <= 16
    assert text


def test_stream_is_relayed_while_generating(client: openai.OpenAI) -> None:
    """Tokens reach the client as produced, not after generation ends."""
    import time

    start = time.monotonic()
    arrivals = []
    stream = client.chat.completions.create(
        model=SIM_SLOW, messages=[{"role": "user", "content": "slow"}], max_tokens=20, stream=True
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - start)
    # 20 tokens at 20 tokens/s: the first arrives long before the last.
    assert len(arrivals) >= 10
    assert arrivals[-1] - arrivals[0] > 0.5


def test_completions(client: openai.OpenAI) -> None:
    resp = client.completions.create(model=DEMO, prompt="Once upon a time", max_tokens=10)
    assert resp.object == "text_completion" and resp.id.startswith("cmpl-")
    assert resp.choices[0].text and resp.usage.completion_tokens <= 10
    multi = client.completions.create(model=SIM, prompt=["a", "b"], max_tokens=5, n=2)
    assert len(multi.choices) == 4 and [c.index for c in multi.choices] == [0, 1, 2, 3]
    chunks = list(
        client.completions.create(
            model=DEMO,
            prompt="Once",
            max_tokens=6,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens <= 6


def test_logprobs_on_the_transformers_engine_and_refused_by_the_simulated_one(
    client: openai.OpenAI,
) -> None:
    user = [{"role": "user", "content": "Tell me about the sea."}]
    done = client.chat.completions.create(
        model=DEMO, messages=user, max_tokens=6, logprobs=True, top_logprobs=2
    )
    assert done.usage is not None and done.choices[0].logprobs is not None
    entries = done.choices[0].logprobs.content or []
    assert len(entries) == done.usage.completion_tokens > 0
    for entry in entries:
        ranked = [alt.logprob for alt in entry.top_logprobs]
        assert len(ranked) == 2 and ranked == sorted(ranked, reverse=True)
        assert entry.logprob <= 0 and entry.bytes == list(entry.token.encode("utf-8"))
    chunks = list(
        client.completions.create(
            model=DEMO,
            prompt="Once",
            max_tokens=6,
            logprobs=1,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    tokens = [
        t for c in chunks for ch in c.choices if ch.logprobs for t in ch.logprobs.tokens or []
    ]
    assert chunks[-1].usage is not None and len(tokens) == chunks[-1].usage.completion_tokens
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=SIM, messages=user, max_tokens=4, logprobs=True)
    assert err.value.param == "logprobs" and "simulated engine" in err.value.message


def test_32_concurrent_async_requests(aclient: Callable[[], openai.AsyncOpenAI]) -> None:
    async def one(client: openai.AsyncOpenAI, i: int) -> str:
        r = await client.chat.completions.create(
            model=DEMO, messages=[{"role": "user", "content": f"request {i}"}], max_tokens=8
        )
        return r.choices[0].message.content or ""

    async def main() -> list[str]:
        async with aclient() as client:
            return await asyncio.gather(*(one(client, i) for i in range(32)))

    results = asyncio.run(main())
    assert len(results) == 32 and all(results)


def test_async_streaming(aclient: Callable[[], openai.AsyncOpenAI]) -> None:
    async def main() -> str:
        async with aclient() as client:
            stream = await client.chat.completions.create(
                model=SIM, messages=[{"role": "user", "content": "hi"}], max_tokens=10, stream=True
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert len(asyncio.run(main()).split()) == 10


def test_errors_through_the_sdk(client: openai.OpenAI, stack) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert err.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(
            model=DEMO, messages=[{"role": "user", "content": "x"}], temperature=5
        )
    assert bad.value.param == "temperature" and bad.value.code == "invalid_value"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model=DEMO, messages=[])
    assert bad.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model=DEMO, messages=[{"role": "wizard", "content": "x"}])
    assert bad.value.param == "messages[0].role"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(
            model=DEMO, messages=[{"role": "user", "content": "x"}], extra_body={"bogus": 1}
        )
    assert "bogus" in bad.value.message
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(
            model=DEMO, messages=[{"role": "user", "content": "word " * 3000}], max_tokens=10
        )
    assert bad.value.code == "context_length_exceeded"
    wrong = openai.OpenAI(base_url=stack.base_url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as auth:
        wrong.models.list()
    assert auth.value.code == "invalid_api_key"


def test_model_without_workers_is_503_not_a_hang(client: openai.OpenAI) -> None:
    import time

    start = time.monotonic()
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(
            model="no-workers", messages=[{"role": "user", "content": "x"}]
        )
    assert err.value.status_code == 503
    assert time.monotonic() - start < 5


def test_plain_http_errors_are_envelopes(stack, api_key: str) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}
    base = stack.base_url
    r = httpx.get(base + "/nowhere", headers=headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_url"
    r = httpx.get(base + "/chat/completions", headers=headers)
    assert r.status_code == 405 and "error" in r.json()
    r = httpx.post(base + "/chat/completions", headers=headers, content=b"{not json", timeout=10)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.post(
        base + "/chat/completions",
        headers={**headers, "Content-Type": "application/json"},
        content=b"x" * (17 * 1024 * 1024),
        timeout=30,
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    r = httpx.get(base + "/models")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    health = httpx.get(base.removesuffix("/v1") + "/health")
    assert health.status_code == 200 and health.json()["database"] == "ok"


def test_worker_killed_mid_request_is_reported_not_hung(client: openai.OpenAI, stack) -> None:
    """kill -9 of the worker while a client waits: a 503 within seconds, not a 10-minute hang."""
    import threading
    import time

    outcome: dict[str, object] = {}

    def call() -> None:
        start = time.monotonic()
        try:
            client.chat.completions.create(
                model=SIM_SLOW, messages=[{"role": "user", "content": "long"}], max_tokens=2000
            )
        except openai.APIStatusError as exc:
            outcome["error"] = exc
        outcome["seconds"] = time.monotonic() - start

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(1.5)
    stack.kill("sim-slow")
    thread.join(timeout=30)
    try:
        assert not thread.is_alive()
        err = outcome.get("error")
        assert isinstance(err, openai.InternalServerError) and err.status_code == 503
        assert err.code == "worker_lost"
        assert outcome["seconds"] < 20
    finally:
        stack.restart("sim-slow")
        stack.wait_queue(f"realtime.{SIM_SLOW}")
