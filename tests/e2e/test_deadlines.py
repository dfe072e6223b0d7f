"""The deadline promise against the real stack, on a simulated engine of known throughput
(1,000 tokens/s, as `make run`'s CPU engine): admission at creation, an honest ETA, retry of
what failed (SDK and CLI), and flex responses that carry their ETA."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from click.testing import CliRunner
from openai.types import Batch

from cli import main
from tests.helpers import (
    SIM,
    SIM_CAPACITY,
    SIM_SLOW,
    chat_line,
    eventually,
    jsonl,
    lines_of,
    submit,
    wait_for,
)
from tests.helpers import batch_finished as finished
from tests.stack import Stack

pytestmark = pytest.mark.e2e

WORKER = "sim-capacity"


@pytest.fixture(scope="module")
def capacity_worker(stack: Stack) -> Iterator[None]:
    """One worker of the 1,000 tokens/s model, taking flex and batch work only (so all ten
    of its engine's slots are theirs)."""
    stack.start(
        WORKER,
        ["worker", "--queues", "flex,batch", "--model", SIM_CAPACITY, "--batch-size", "10"],
    )
    try:
        stack.wait_queue(f"batch.{SIM_CAPACITY}")
        yield
    finally:
        stack.kill(WORKER, signal.SIGTERM)


def eta_of(batch: Any) -> int | None:
    return (batch.model_extra or {}).get("estimated_completion_at")


def test_a_batch_the_window_cannot_hold_is_refused_and_a_small_urgent_one_goes_first(
    client: openai.OpenAI, capacity_worker: None
) -> None:
    # 50,000 short prompts with max_tokens 500: 25 M output tokens, about 7 h of this engine.
    lines = [chat_line(f"q{i}", model=SIM_CAPACITY, max_tokens=500) for i in range(50_000)]
    big = client.files.create(file=("big.jsonl", jsonl(lines)), purpose="batch")
    with pytest.raises(openai.RateLimitError) as refused:
        client.batches.create(
            input_file_id=big.id, endpoint="/v1/chat/completions", completion_window="1h"
        )
    err = refused.value
    assert err.status_code == 429 and err.code == "insufficient_capacity"
    assert err.response.headers["x-should-retry"] == "false"
    assert "1h" in err.message and '"24h"' in err.message and " h " in err.message, err.message

    day = client.batches.create(
        input_file_id=big.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert day.status == "validating"
    eta = eta_of(day)
    assert eta is not None and 6 * 3600 < eta - day.created_at < 8 * 3600
    try:
        wait_for(client, day.id, lambda b: b.status == "in_progress", timeout=240)
        # Earliest deadline first: a small 1 h batch is accepted and runs ahead of it.
        urgent = submit(
            client,
            [chat_line(f"u{i}", model=SIM_CAPACITY, max_tokens=20) for i in range(10)],
            window="1h",
        )
        assert eta_of(urgent) is not None and eta_of(urgent) - urgent.created_at < 120
        done = finished(client, urgent.id, timeout=120)
        assert done.status == "completed" and done.request_counts.completed == 10
        assert client.batches.retrieve(day.id).status == "in_progress"
    finally:
        client.batches.cancel(day.id)


def test_eta_after_a_quarter_of_the_lines_is_within_half_of_the_real_finish(
    client: openai.OpenAI, capacity_worker: None
) -> None:
    n = 2000  # 40,000 output tokens: about 40 s of the engine
    batch = submit(
        client, [chat_line(f"e{i}", model=SIM_CAPACITY, max_tokens=20) for i in range(n)]
    )
    quarter = wait_for(
        client, batch.id, lambda b: b.request_counts.completed >= n // 4, timeout=180
    )
    seen_at, eta = time.time(), eta_of(quarter)
    assert eta is not None, "a running batch has an estimated completion"
    done = finished(client, batch.id, timeout=300)
    assert done.status == "completed" and eta_of(done) is None
    real_left = done.completed_at - seen_at
    estimated_left = eta - seen_at
    print(f"after {n // 4} of {n} lines: {estimated_left:.1f} s estimated, {real_left:.1f} s real")
    assert abs(estimated_left - real_left) <= 0.5 * real_left, (estimated_left, real_left)


def test_retry_runs_only_what_failed_through_the_sdk_and_the_cli(
    client: openai.OpenAI, other_client: openai.OpenAI, stack: Stack, api_key: str
) -> None:
    too_long = chat_line("long", model=SIM)
    too_long["body"]["messages"][0]["content"] = "word " * 9000  # past the 8192-token context
    original = finished(client, submit(
        client, [chat_line(f"ok{i}", model=SIM) for i in range(3)] + [too_long],
        metadata={"job": "first"},
    ).id)  # fmt: skip
    assert original.request_counts.failed == 1

    again = client.post(f"/batches/{original.id}/retry", cast_to=Batch)
    assert again.id != original.id and again.completion_window == original.completion_window
    assert again.metadata == {"job": "first", "retry_of": original.id}
    again_done = finished(client, again.id)
    assert again_done.request_counts.total == 1
    assert [x["custom_id"] for x in lines_of(client, again_done.error_file_id)] == ["long"]

    # Lines cancelled mid-run come back through the CLI, in another window.
    slow = submit(client, [chat_line(f"s{i}", model=SIM_SLOW, max_tokens=20) for i in range(16)])
    wait_for(client, slow.id, lambda b: b.request_counts.completed >= 2)
    client.batches.cancel(slow.id)
    cancelled = finished(client, slow.id)
    left = cancelled.request_counts.total - cancelled.request_counts.completed
    assert cancelled.status == "cancelled" and left > 0
    env = {"OPENAI_BASE_URL": stack.base_url, "OPENAI_API_KEY": api_key}
    result = CliRunner().invoke(main, ["batch", "retry", slow.id, "--window", "1h"], env=env)
    assert result.exit_code == 0, result.output
    new_id = result.output.split()[1].rstrip(":")
    rerun = finished(client, new_id, timeout=90)
    assert rerun.completion_window == "1h" and rerun.status == "completed"
    assert (rerun.metadata or {}).get("retry_of") == slow.id
    done_first = {x["custom_id"] for x in lines_of(client, cancelled.output_file_id)}
    done_now = Counter(x["custom_id"] for x in lines_of(client, rerun.output_file_id))
    assert set(done_now) == {f"s{i}" for i in range(16)} - done_first
    assert set(done_now.values()) == {1}

    status = CliRunner().invoke(main, ["batch", "status", rerun.id], env=env)
    assert status.exit_code == 0 and "completed" in status.output


def test_retry_envelopes(client: openai.OpenAI, other_client: openai.OpenAI) -> None:
    clean = finished(client, submit(client, [chat_line("fine", model=SIM)]).id)
    with pytest.raises(openai.ConflictError) as nothing:
        client.post(f"/batches/{clean.id}/retry", cast_to=Batch)
    assert nothing.value.code == "nothing_to_retry"
    with pytest.raises(openai.NotFoundError):
        other_client.post(f"/batches/{clean.id}/retry", cast_to=Batch)
    with pytest.raises(openai.NotFoundError):
        client.post("/batches/batch_nope/retry", cast_to=Batch)
    running = submit(client, [chat_line(f"r{i}", model=SIM_SLOW, max_tokens=40) for i in range(8)])
    try:
        with pytest.raises(openai.ConflictError) as busy:
            client.post(f"/batches/{running.id}/retry", cast_to=Batch)
        assert busy.value.code == "batch_not_finished"
        with pytest.raises(openai.BadRequestError):
            client.post(
                f"/batches/{clean.id}/retry", body={"completion_window": "2h"}, cast_to=Batch
            )
    finally:
        client.batches.cancel(running.id)


def test_background_flex_responses_carry_their_eta(
    client: openai.OpenAI, capacity_worker: None
) -> None:
    resp = client.responses.create(
        model=SIM_CAPACITY, input="hello", service_tier="flex", background=True,
        max_output_tokens=16,
    )  # fmt: skip
    first = (resp.model_extra or {}).get("estimated_completion_at")
    assert first is not None and resp.created_at <= first <= resp.created_at + 3600
    ended = eventually(
        lambda: client.responses.retrieve(resp.id),
        lambda r: r.status not in ("queued", "in_progress"),
        timeout=60,
    )
    assert ended.status == "incomplete"  # its 16 tokens, all it asked for
    assert (ended.model_extra or {}).get("estimated_completion_at") is None
