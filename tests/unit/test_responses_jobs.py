"""Job progress read back from the event channel, and a retry continuing from it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from inference_platform.engines import build_engine
from inference_platform.engines.base import Delta
from inference_platform.engines.host import EngineHost
from inference_platform.events import ChoiceEnd, End, Started, TextDelta
from inference_platform.generation import CHAT, GenerationResult, plan
from inference_platform.jobs import progress
from inference_platform.jobs.attempts import JobAttempt
from inference_platform.jobs.store import Claimed


@pytest.fixture
def host() -> Iterator[EngineHost]:
    h = EngineHost(build_engine("simulated", "sim", None, {"tokens_per_second": 0}))
    h.start()
    yield h
    h.stop()


def test_progress_reads_text_counts_and_stops_at_the_end() -> None:
    state = progress.read(
        [
            Started(attempt=1),
            TextDelta(0, "a", 1, 7),
            TextDelta(1, "b c", 2, 7),
            ChoiceEnd(1, "stop", 2, 7),
            Started(attempt=2),
            TextDelta(0, " d", 2, 7),
            End(),
            TextDelta(0, "ignored"),
        ]
    )
    assert state.texts == {0: "a d", 1: "b c"} and state.finish == {1: "stop"}
    assert state.total_output() == 4 and state.total_prompt() == 7
    assert state.attempts == 2 and state.produced and state.terminal is not None
    assert not progress.read([Started(attempt=1)]).produced


def test_resume_continues_unfinished_choices(host: EngineHost) -> None:
    body = {"messages": [{"role": "user", "content": "tell me"}], "n": 3, "max_tokens": 10}
    requests, _ = plan(host, CHAT, body, "chatcmpl-1", tier="flex", default_max_tokens=16)
    prior = progress.read(
        [
            Started(attempt=1),
            TextDelta(0, "one two three", 3, 4),
            TextDelta(1, "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10", 10, 4),
            TextDelta(2, "done", 1, 4),
            ChoiceEnd(2, "stop", 1, 4),
        ]
    )
    work = Claimed("chatcmpl-1", "flex", "sim", CHAT, "t", body, 2, datetime.now(UTC))
    attempt = JobAttempt(work, result=GenerationResult.empty([0, 0, 0]))
    attempt.prior = prior
    attempt._resume(requests)
    published = attempt.opening_events()
    for j, delta in host.stream(attempt.requests):
        assert isinstance(delta, Delta)
        attempt.on_delta(j, delta, published)
    first, full, stopped = attempt.result.choices
    # Choice 0 went on from its text with the 7 tokens it had left.
    assert first.text.startswith("one two three") and first.completion_tokens == 10
    assert len(first.text.removeprefix("one two three").split()) == 7
    assert first.finish_reason == "length"
    # Choice 1 had used its whole budget; choice 2 had finished: neither runs again.
    assert full.finish_reason == "length" and full.completion_tokens == 10
    assert stopped.text == "done" and stopped.finish_reason == "stop"
    assert attempt.result.prompt_tokens == 4 and attempt.result.completion_tokens == 21
    # Published counts continue the earlier attempt's: 3 + the new tokens, same prompt.
    last = published[-1][1]
    assert isinstance(last, TextDelta | ChoiceEnd) and last.index == 0
    assert (last.output_tokens, last.prompt_tokens) == (10, 4)
    assert ("chatcmpl-1", ChoiceEnd(1, "length", 10, 4)) in published
