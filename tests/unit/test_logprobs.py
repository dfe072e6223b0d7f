"""Log probabilities: request validation, the engine's conversion of vLLM output, how they
travel (events, results, job progress) and the objects the SDK reads them from."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from inference_platform import realtime
from inference_platform.endpoints.chat_completions.protocol import (
    ChatCompletionCreateRequestSchema,
    chat_completion,
)
from inference_platform.endpoints.chat_completions.serving import _chunks as chat_chunks
from inference_platform.endpoints.completions.protocol import (
    CompletionCreateRequestSchema,
    text_completion,
)
from inference_platform.endpoints.completions.serving import _chunks as completion_chunks
from inference_platform.endpoints.protocol import load
from inference_platform.engines import build_engine
from inference_platform.engines.base import (
    Delta,
    GenerationRequest,
    SamplingParams,
    TokenLogprob,
    UnsupportedByEngine,
)
from inference_platform.engines.simulated import SimulatedEngine
from inference_platform.engines.vllm_engine import _token_logprobs
from inference_platform.errors import PlatformError
from inference_platform.events import ChoiceEnd, End, Event, TextDelta, Usage, decode, encode
from inference_platform.generation import GenerationResult, check_features, logprobs_wanted
from inference_platform.jobs import progress

CHAT = ChatCompletionCreateRequestSchema()
COMPLETION = CompletionCreateRequestSchema()

# "é" is two UTF-8 bytes; the sampled " b" is not among the single top alternative.
TOKENS = (
    TokenLogprob("é", -0.25, (("é", -0.25), ("e", -1.5))),
    TokenLogprob(" b", -3.0, ((" a", -0.1),)),
)


def chat_body(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}


def refused(schema: Any, body: dict[str, Any]) -> PlatformError:
    with pytest.raises(PlatformError) as err:
        load(schema, body)
    assert err.value.status == 400
    return err.value


# -- validation ------------------------------------------------------------------------------


def test_chat_accepts_logprobs_and_top_logprobs_up_to_20() -> None:
    body = load(CHAT, chat_body(logprobs=True, top_logprobs=20))
    assert logprobs_wanted(body) == 20
    assert logprobs_wanted(load(CHAT, chat_body(logprobs=True))) == 0
    assert logprobs_wanted(load(CHAT, chat_body(logprobs=False))) is None
    assert logprobs_wanted(load(CHAT, chat_body())) is None


@pytest.mark.parametrize(
    "extra",
    [
        {"top_logprobs": 2},
        {"top_logprobs": 0},
        {"logprobs": False, "top_logprobs": 2},
        {"logprobs": True, "top_logprobs": 21},
        {"logprobs": True, "top_logprobs": -1},
    ],
)
def test_chat_top_logprobs_needs_logprobs_and_a_range(extra: dict[str, Any]) -> None:
    assert refused(CHAT, chat_body(**extra)).param == "top_logprobs"


def test_completions_logprobs_is_a_count_up_to_5() -> None:
    body = load(COMPLETION, {"model": "m", "prompt": "x", "logprobs": 5})
    assert logprobs_wanted(body) == 5
    assert logprobs_wanted(load(COMPLETION, {"model": "m", "prompt": "x", "logprobs": 0})) == 0
    for value in (6, -1, True, 1.5):
        err = refused(COMPLETION, {"model": "m", "prompt": "x", "logprobs": value})
        assert err.param == "logprobs"


def test_completions_logprobs_with_echo_is_refused() -> None:
    err = refused(COMPLETION, {"model": "m", "prompt": "x", "logprobs": 1, "echo": True})
    assert err.param == "logprobs" and "echo" in err.message


@pytest.mark.parametrize(
    "body", [chat_body(logprobs=True), {"model": "m", "prompt": "x", "logprobs": 0}]
)
def test_an_engine_without_logprobs_refuses_them_by_name(body: dict[str, Any]) -> None:
    host = SimpleNamespace(engine=SimulatedEngine("sim", None, {}))
    with pytest.raises(UnsupportedByEngine) as err:
        check_features(host, body)  # type: ignore[arg-type]
    assert err.value.status_code == 400 and err.value.param == "logprobs"
    assert "simulated engine" in err.value.message


# -- the vLLM engine's conversion ------------------------------------------------------------


@dataclass
class Logprob:  # vLLM's shape: logprob, rank in the vocabulary, decoded text
    logprob: float
    rank: int | None
    decoded_token: str | None


def test_vllm_output_becomes_one_entry_per_token_with_the_sampled_one_kept() -> None:
    # Position 0 sampled the most likely token; position 1 sampled token 9, ranked 4th, which
    # vLLM adds to the top 2. A -inf log probability is floored (JSON has no infinity).
    completion = SimpleNamespace(
        token_ids=[7, 9],
        logprobs=[
            {7: Logprob(-0.1, 1, "a"), 8: Logprob(-2.5, 2, "b")},
            {
                9: Logprob(float("-inf"), 4, "z"),
                3: Logprob(-1.0, 2, "y"),
                7: Logprob(-0.5, 1, "a"),
            },
        ],
    )
    got = _token_logprobs(completion, 2)
    assert got == (
        TokenLogprob("a", -0.1, (("a", -0.1), ("b", -2.5))),
        TokenLogprob("z", -9999.0, (("a", -0.5), ("y", -1.0))),
    )
    assert _token_logprobs(completion, None) == ()
    only_sampled = _token_logprobs(
        SimpleNamespace(token_ids=[7], logprobs=[{7: Logprob(-0.1, 3, "a")}]), 0
    )
    assert only_sampled == (TokenLogprob("a", -0.1, ()),)


# -- travelling ------------------------------------------------------------------------------


def test_events_carry_logprobs_compactly() -> None:
    delta = TextDelta(0, "é b", 2, 5, TOKENS)
    wire = encode(delta)
    # One list per token: [token, logprob, [[token, logprob], ...]].
    assert json.loads(wire)["logprobs"][0] == ["é", -0.25, [["é", -0.25], ["e", -1.5]]]
    assert decode(wire) == delta
    end = End(Usage(5, 2), choices=(("é b", "stop"),), logprobs=(TOKENS,))
    assert decode(encode(end)) == end
    assert "logprobs" not in encode(TextDelta(0, "x"))


def test_results_and_job_progress_fold_deltas_in_order() -> None:
    result = GenerationResult.empty([0])
    result.add(0, Delta("é", None, 5, 1, TOKENS[:1]))
    result.add(0, Delta(" b", "stop", 5, 2, TOKENS[1:]))
    assert result.choices[0].logprobs == list(TOKENS)
    events = [TextDelta(0, "é", 1, 5, TOKENS[:1]), TextDelta(0, " b", 2, 5, TOKENS[1:])]
    assert progress.read([*events, ChoiceEnd(0, "stop", 2, 5)]).logprobs == {0: list(TOKENS)}


# -- objects ---------------------------------------------------------------------------------


def test_chat_completion_logprobs() -> None:
    obj = chat_completion(
        id="c",
        created=1,
        model="m",
        choices=[("é b", "stop")],
        usage=Usage(1, 2),
        service_tier="default",
        body={"logprobs": True, "top_logprobs": 2},
        logprobs=[TOKENS],
    )
    content = ChatCompletion.model_validate(obj).choices[0].logprobs.content  # type: ignore[union-attr]
    assert content is not None and [c.token for c in content] == ["é", " b"]
    assert content[0].bytes == [0xC3, 0xA9] and content[0].logprob == -0.25
    assert [t.token for t in content[0].top_logprobs] == ["é", "e"]
    assert content[1].top_logprobs[0].bytes == [0x20, 0x61]
    plain = chat_completion(
        id="c",
        created=1,
        model="m",
        choices=[("x", "stop")],
        usage=Usage(1, 1),
        service_tier="default",
        body={},
        logprobs=[TOKENS],
    )
    assert plain["choices"][0]["logprobs"] is None


def test_text_completion_logprobs_keep_the_sampled_token_and_offsets() -> None:
    obj = text_completion(
        id="c",
        created=1,
        model="m",
        body={"prompt": "p", "n": 1, "logprobs": 1},
        choices=[("é b", "stop")],
        usage=Usage(1, 2),
        service_tier="default",
        logprobs=[TOKENS],
    )
    lp = Completion.model_validate(obj).choices[0].logprobs
    assert lp is not None
    assert lp.tokens == ["é", " b"] and lp.token_logprobs == [-0.25, -3.0]
    assert lp.top_logprobs == [{"é": -0.25, "e": -1.5}, {" a": -0.1, " b": -3.0}]
    assert lp.text_offset == [0, 1]


def _job(body: dict[str, Any]) -> realtime.Submitted:
    return realtime.Submitted("id", 1, "m", "/v1/x", "default", body)


def test_chat_stream_chunks_carry_the_tokens_of_their_delta() -> None:
    body = {"n": 1, "logprobs": True, "top_logprobs": 1}
    events: list[Event] = [
        TextDelta(0, "", logprobs=TOKENS[:1]),  # a token that adds no text yet
        TextDelta(0, "é b", logprobs=TOKENS[1:]),
        ChoiceEnd(0, "stop"),
        End(Usage(1, 2)),
    ]
    chunks = [ChatCompletionChunk.model_validate(c) for c in chat_chunks(_job(body), iter(events))]
    tokens = [
        entry.token
        for chunk in chunks
        for choice in chunk.choices
        if choice.logprobs is not None
        for entry in choice.logprobs.content or []
    ]
    assert tokens == ["é", " b"]


def test_completion_stream_offsets_continue_across_chunks() -> None:
    body = {"prompt": "p", "n": 1, "logprobs": 0}
    events = [TextDelta(0, "é", logprobs=TOKENS[:1]), TextDelta(0, " b", logprobs=TOKENS[1:])]
    chunks = list(completion_chunks(_job(body), iter(events)))
    offsets = [c["choices"][0]["logprobs"]["text_offset"] for c in chunks]  # type: ignore[index]
    assert offsets == [[0], [1]]


# -- the transformers engine -----------------------------------------------------------------


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from inference_platform.demo_model import build_demo_model

    return build_demo_model(tmp_path_factory.mktemp("models") / "demo")


def test_transformers_engine_gives_each_token_its_logprobs(model_path: Path) -> None:
    async def main() -> list[Delta]:
        engine = build_engine("transformers", "demo", str(model_path), {})
        await engine.start()
        try:
            params = SamplingParams(max_tokens=8, temperature=0.0, ignore_eos=True, logprobs=3)
            request = GenerationRequest("r", "The sea is", params)
            return [d async for d in engine.generate(request)]
        finally:
            await engine.stop()

    deltas = asyncio.run(main())
    tokens = [t for d in deltas for t in d.logprobs]
    assert len(tokens) == deltas[-1].completion_tokens == 8
    assert "".join(t.token for t in tokens) == "".join(d.text for d in deltas)
    for t in tokens:
        ranked = [lp for _, lp in t.top]
        assert len(ranked) == 3 and ranked == sorted(ranked, reverse=True)
        # Greedy: the sampled token is the most likely one.
        assert t.top[0] == (t.token, t.logprob) and t.logprob <= 0
