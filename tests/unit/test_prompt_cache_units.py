"""Cached prompt tokens: the block-wise prefix cache model, the simulated engine that reports
it, the usage objects that carry it, and the prefix groups a batch's claims follow."""

from __future__ import annotations

import asyncio

from inference_platform.batches.prefix import prefix_hash
from inference_platform.endpoints.batches.protocol import usage_object
from inference_platform.endpoints.protocol import completion_usage
from inference_platform.endpoints.responses.protocol import usage as response_usage
from inference_platform.engines.base import Delta, GenerationRequest, SamplingParams
from inference_platform.engines.prefix_cache import PrefixCache
from inference_platform.engines.simulated import SimulatedEngine
from inference_platform.events import End, Usage, decode, encode
from inference_platform.generation import CHAT, COMPLETIONS, RESPONSES, GenerationResult


def test_a_prefix_cache_serves_the_leading_full_blocks_an_earlier_prompt_had() -> None:
    cache = PrefixCache(block=4)
    doc = [f"d{i}" for i in range(10)]
    assert cache.serve([*doc, "q1"]) == 0  # nothing cached yet
    assert cache.serve([*doc, "q2", "more"]) == 8  # two full blocks of the document
    # A prompt cached in full still computes its last token: one block less.
    assert cache.serve(doc[:8]) == 4
    assert cache.serve(["other", *doc]) == 0  # a different first block shares nothing


def test_a_full_prefix_cache_forgets_the_least_recently_used_blocks() -> None:
    cache = PrefixCache(block=2, capacity=2)
    cache.serve(["a", "b", "c", "d", "e"])
    cache.serve(["x", "y", "z"])  # pushes out a,b (the oldest block)
    assert cache.serve(["a", "b", "c", "d", "e"]) == 0


def _run(engine: SimulatedEngine, prompt: str) -> Delta:
    async def go() -> Delta:
        request = GenerationRequest("r", prompt, SamplingParams(max_tokens=3))
        return [d async for d in engine.generate(request)][-1]

    return asyncio.run(go())


def test_the_simulated_engine_reports_cached_tokens_of_a_repeated_prompt() -> None:
    engine = SimulatedEngine("sim", None, {})
    prompt = " ".join(f"w{i}" for i in range(40))
    first, again = _run(engine, prompt), _run(engine, prompt)
    assert (first.prompt_tokens, first.cached_tokens) == (40, 0)
    assert (again.prompt_tokens, again.cached_tokens) == (40, 32)  # two blocks of 16
    off = SimulatedEngine("sim", None, {"prefix_cache_tokens": 0})
    assert _run(off, prompt).cached_tokens == _run(off, prompt).cached_tokens == 0


def test_a_prompt_shared_by_n_choices_is_billed_as_its_first_computation() -> None:
    result = GenerationResult.empty([0, 0])
    result.add(0, Delta("a", "length", 40, 1, cached_tokens=0))
    result.add(1, Delta("b", "length", 40, 1, cached_tokens=32))
    assert result.usage() == Usage(40, 2, 0)
    single = GenerationResult.empty([0])
    single.add(0, Delta("a", "length", 40, 1, cached_tokens=32))
    assert single.usage() == Usage(40, 1, 32)


def test_every_usage_object_carries_cached_tokens() -> None:
    used = Usage(40, 2, 32)
    assert completion_usage(used)["prompt_tokens_details"] == {"cached_tokens": 32}
    assert response_usage(40, 2, 32)["input_tokens_details"]["cached_tokens"] == 32
    batch = usage_object(400, 20, 320)
    assert batch["input_tokens_details"] == {"cached_tokens": 320}
    assert batch["total_tokens"] == 420
    end = decode(encode(End(used)))
    assert isinstance(end, End) and end.usage == used


def _chat(system: str, user: str) -> dict[str, object]:
    return {"messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}


def test_lines_group_by_system_prompt_then_by_how_the_rest_begins() -> None:
    doc = "the document " * 100
    a1 = prefix_hash(CHAT, _chat("sys", doc + "question one"))
    a2 = prefix_hash(CHAT, _chat("sys", doc + "question two"))
    b = prefix_hash(CHAT, _chat("sys", "another document " * 60))
    c = prefix_hash(CHAT, _chat("other system", doc + "question one"))
    assert a1 == a2 and len({a1, b, c}) == 3
    assert a1 is not None and b is not None and c is not None
    # The high half is the system part: lines with one system prompt sort next to each other.
    assert (a1 >> 32) == (b >> 32) != (c >> 32)
    assert -(1 << 63) <= a1 < 1 << 63
    assert prefix_hash(COMPLETIONS, {"prompt": doc + "x"}) == prefix_hash(
        COMPLETIONS, {"prompt": doc + "y"}
    )
    responses = {"instructions": "sys", "input": doc + "q"}
    assert prefix_hash(RESPONSES, responses) is not None
    assert prefix_hash("/v1/embeddings", {"input": "x"}) is None
