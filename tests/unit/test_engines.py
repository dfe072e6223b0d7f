"""Engines against the real tiny demo model (transformers) and the simulated engine.

Each test drives its engine inside ``asyncio.run`` because an engine belongs to the event loop
that started it.
"""

from __future__ import annotations

import asyncio
import importlib
import shutil
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest

from inference_platform.engines import (
    ContextLengthError,
    Delta,
    Engine,
    EngineAborted,
    GenerationRequest,
    SamplingParams,
    build_engine,
)

T = TypeVar("T")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from inference_platform.demo_model import build_demo_model

    return build_demo_model(tmp_path_factory.mktemp("models") / "demo")


def run_engine(
    kind: str, path: Path | None, args: dict[str, Any], body: Callable[[Engine], Awaitable[T]]
) -> T:
    """Start an engine on a fresh loop, run ``body`` with it, always stop it."""

    async def main() -> T:
        engine = build_engine(kind, "test-model", str(path) if path else None, args)
        await engine.start()
        try:
            return await body(engine)
        finally:
            await engine.stop()

    return asyncio.run(main())


async def collect(engine: Engine, request: GenerationRequest) -> tuple[str, list[Delta]]:
    deltas = [delta async for delta in engine.generate(request)]
    return "".join(d.text for d in deltas), deltas


def req(request_id: str, prompt: str, **params: Any) -> GenerationRequest:
    return GenerationRequest(request_id, prompt, SamplingParams(**params))


PROMPTS = [
    "Hello",
    "The model reads a long story about the sea and the river near the city today",
    "Why?",
    "a b c d e f g h i j k l",
    "Numbers: 1 2 3",
    "Write a short poem about the sea.",
    "The queue keeps every message",
    "Is it raining? Yes, it is.",
]


def hf_greedy(path: Path, prompts: list[str], max_new_tokens: int) -> list[str]:
    """Reference output: transformers' own generate(), one prompt at a time, no padding."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    texts = []
    for prompt in prompts:
        inputs = tokenizer(prompt, return_tensors="pt")
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        new_ids = out[0, inputs["input_ids"].shape[1] :]
        texts.append(str(tokenizer.decode(new_ids, skip_special_tokens=True)))
    return texts


# ------------------------------------------------------------------------- demo model


def test_demo_model_is_idempotent_and_loadable(model_path: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from inference_platform.demo_model import _publish, build_demo_model

    started = time.monotonic()
    assert build_demo_model(model_path) == model_path
    assert time.monotonic() - started < 1.0
    assert (model_path / "model.safetensors").is_file()

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    assert 1000 <= len(tokenizer) <= 2000
    text = "Grüße, 世界! 🙂"
    assert tokenizer.decode(tokenizer.encode(text), skip_special_tokens=True) == text
    prompt = str(
        tokenizer.apply_chat_template(
            [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
            tokenize=False,
            add_generation_prompt=True,
        )
    )
    assert prompt.startswith("<s><|developer|>\nBe brief.</s>")
    assert prompt.endswith("<|assistant|>\n")

    # A builder that loses the rename race discards its copy and keeps the winner's.
    loser = tmp_path / "loser"
    shutil.copytree(model_path, loser)
    _publish(loser, model_path)
    assert not loser.exists() and (model_path / "config.json").is_file()


# ------------------------------------------------------------------------- transformers


def test_stream_deltas_concatenate_and_track_usage(model_path: Path) -> None:
    async def body(engine: Engine) -> None:
        prompt = engine.render_chat([{"role": "user", "content": "Tell me a story"}])
        assert prompt.endswith("<|assistant|>\n")
        text, deltas = await collect(engine, req("r1", prompt, max_tokens=12, ignore_eos=True))
        assert len(deltas) > 1
        assert all(d.finish_reason is None for d in deltas[:-1])
        assert deltas[-1].finish_reason == "length"
        assert deltas[-1].completion_tokens == 12
        assert all(d.prompt_tokens == engine.count_tokens(prompt) for d in deltas)
        counts = [d.completion_tokens for d in deltas]
        assert counts == sorted(counts)
        assert text and "\ufffd" not in text

    run_engine("transformers", model_path, {}, body)


def test_greedy_matches_transformers_generate_and_is_deterministic(model_path: Path) -> None:
    expected = hf_greedy(model_path, PROMPTS[:3], 10)

    async def body(engine: Engine) -> None:
        for attempt in range(2):
            for i, prompt in enumerate(PROMPTS[:3]):
                params = {"max_tokens": 10, "temperature": 0.0, "ignore_eos": True}
                text, _ = await collect(engine, req(f"g{attempt}-{i}", prompt, **params))
                assert text == expected[i]

    run_engine("transformers", model_path, {}, body)


def test_seeded_sampling_is_reproducible(model_path: Path) -> None:
    async def body(engine: Engine) -> None:
        outputs = {}
        for i, seed in enumerate([7, 7, 8, 9]):
            params = {"max_tokens": 16, "temperature": 1.0, "top_p": 0.9, "seed": seed}
            outputs[i], _ = await collect(engine, req(f"s{i}", "The model reads", **params))
        assert outputs[0] == outputs[1]
        assert len({outputs[1], outputs[2], outputs[3]}) > 1

    run_engine("transformers", model_path, {}, body)


def test_stop_string_truncates(model_path: Path) -> None:
    async def body(engine: Engine) -> None:
        greedy = {"temperature": 0.0, "ignore_eos": True, "max_tokens": 20}
        full, _ = await collect(engine, req("full", "Hello", **greedy))
        words = full.split()
        stop = f" {words[3]}"
        text, deltas = await collect(engine, req("cut", "Hello", stop=(stop,), **greedy))
        assert text == full[: full.find(stop)]
        assert deltas[-1].finish_reason == "stop"
        assert stop not in text

    run_engine("transformers", model_path, {}, body)


def test_eight_concurrent_requests_are_batched(model_path: Path) -> None:
    expected = hf_greedy(model_path, PROMPTS, 8)

    async def body(engine: Engine) -> None:
        params = {"max_tokens": 8, "temperature": 0.0, "ignore_eos": True}
        results = await asyncio.gather(
            *(collect(engine, req(f"b{i}", p, **params)) for i, p in enumerate(PROMPTS))
        )
        assert [text for text, _ in results] == expected
        assert all(deltas[-1].finish_reason == "length" for _, deltas in results)
        stats = engine.stats()  # type: ignore[attr-defined]
        assert stats["peak_batch"] == 8
        # 8 requests x 8 tokens in one batch: 1 prefill + 7 decode steps, not 8 x 7.
        assert stats["steps"] == 7
        assert stats["running"] == 0 and stats["waiting"] == 0

    run_engine("transformers", model_path, {"batch_size": 8}, body)


@pytest.mark.parametrize("continuous", [True, False])
def test_late_requests_join_or_wait_and_stay_correct(model_path: Path, continuous: bool) -> None:
    expected = hf_greedy(model_path, PROMPTS[:4], 12)

    async def late(engine: Engine, i: int) -> str:
        await asyncio.sleep(0.02 * i)
        params = {"max_tokens": 12, "temperature": 0.0, "ignore_eos": True}
        text, _ = await collect(engine, req(f"late{i}", PROMPTS[i], **params))
        return text

    async def body(engine: Engine) -> None:
        texts = await asyncio.gather(*(late(engine, i) for i in range(4)))
        assert list(texts) == expected
        assert engine.stats()["running"] == 0  # type: ignore[attr-defined]

    args = {"batch_size": 3, "continuous_batching": continuous}
    run_engine("transformers", model_path, args, body)


def test_abort_mid_generation_frees_the_slot(model_path: Path) -> None:
    async def body(engine: Engine) -> None:
        stream = engine.generate(req("long", "Hello", max_tokens=1500, ignore_eos=True))
        assert isinstance(stream, AsyncIterator)
        first = await stream.__anext__()
        assert first.finish_reason is None
        await engine.abort("long")
        started = time.monotonic()
        with pytest.raises(EngineAborted):
            async for _ in stream:
                pass
        assert time.monotonic() - started < 1.0
        text, deltas = await collect(engine, req("after", "Hello", max_tokens=5, ignore_eos=True))
        assert deltas[-1].finish_reason == "length" and text
        assert engine.stats()["running"] == 0  # type: ignore[attr-defined]
        await engine.abort("unknown-id")  # ignored

    run_engine("transformers", model_path, {}, body)


def test_consumer_walking_away_frees_the_slot(model_path: Path) -> None:
    async def body(engine: Engine) -> None:
        stream = engine.generate(req("gone", "Hello", max_tokens=1500, ignore_eos=True))
        await stream.__anext__()
        await stream.aclose()  # type: ignore[attr-defined]
        await collect(engine, req("next", "Hello", max_tokens=3, ignore_eos=True))
        assert engine.stats()["running"] == 0  # type: ignore[attr-defined]

    run_engine("transformers", model_path, {}, body)


def test_context_length_error(model_path: Path) -> None:
    async def body(engine: Engine) -> None:
        assert engine.max_model_len == 64
        prompt = "word " * 60
        n = engine.count_tokens(prompt)
        stream = engine.generate(req("big", prompt, max_tokens=10))
        with pytest.raises(ContextLengthError) as info:
            await stream.__anext__()
        assert f"{n + 10} tokens" in info.value.message and "64" in info.value.message
        assert info.value.status_code == 400

    run_engine("transformers", model_path, {"max_model_len": 64}, body)


def test_detokenizer_and_stop_matcher_units(model_path: Path) -> None:
    from transformers import AutoTokenizer

    from inference_platform.engines.text import Detokenizer, StopMatcher

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    text = "Grüße aus 日本, café 🙂!"
    ids = tokenizer.encode(text, add_special_tokens=False)
    detok = Detokenizer(lambda i: str(tokenizer.decode(i, skip_special_tokens=True)), [])
    pieces = [detok.push(i) for i in ids] + [detok.flush()]
    assert "".join(pieces) == text
    assert not any("\ufffd" in p for p in pieces)

    matcher = StopMatcher(["lo w", "xyz"])
    assert matcher.feed("Hel") == ("He", False)  # "l" may start "lo w": held back
    assert matcher.feed("lo ") == ("l", False)
    assert matcher.feed("world") == ("", True)
    other = StopMatcher(["END"])
    assert other.feed("abcE") == ("abc", False)
    assert other.feed("x") == ("Ex", False)
    assert other.feed("EN") == ("", False)
    assert other.flush() == "EN"


# ------------------------------------------------------------------------- simulated


def test_simulated_is_deterministic_and_exact() -> None:
    async def body(engine: Engine) -> None:
        assert engine.simulated and engine.kind == "simulated"
        prompt = engine.render_chat([{"role": "user", "content": "hi there"}])
        assert prompt == "user: hi there\nassistant:"
        assert engine.count_tokens(prompt) == 4
        a, deltas = await collect(engine, req("a", "hello", max_tokens=20, seed=1))
        b, _ = await collect(engine, req("b", "hello", max_tokens=20, seed=1))
        c, _ = await collect(engine, req("c", "hello", max_tokens=20, seed=2))
        assert a == b != c
        assert len(a.split()) == 20
        assert deltas[-1] == Delta(a, "length", 1, 20)
        stop = " ".join(a.split()[3:5])
        cut, deltas = await collect(engine, req("d", "hello", max_tokens=20, seed=1, stop=(stop,)))
        assert cut == a[: a.find(stop)] and deltas[-1].finish_reason == "stop"
        assert deltas[-1].completion_tokens == 5
        with pytest.raises(ContextLengthError):
            await collect(engine, req("e", "one two three", max_tokens=98))

    run_engine("simulated", None, {"max_model_len": 100}, body)


def test_simulated_speed_settings_are_honoured() -> None:
    async def body(engine: Engine) -> None:
        started = time.monotonic()
        arrivals = []
        async for delta in engine.generate(req("paced", "hello", max_tokens=20)):
            arrivals.append((time.monotonic() - started, delta))
        first_at, total = arrivals[0][0], arrivals[-1][0]
        assert 0.09 <= first_at < 0.5  # ttft 100 ms
        assert 0.27 <= total < 1.5  # 100 ms + 19 tokens at 100 tokens/s
        assert len(arrivals) >= 5  # streamed, not one blob
        assert arrivals[-1][1].completion_tokens == 20

    run_engine("simulated", None, {"ttft_ms": 100, "tokens_per_second": 100}, body)


def test_simulated_abort_concurrency_cap_and_priority() -> None:
    async def body(engine: Engine) -> None:
        stream = engine.generate(req("slow", "x", max_tokens=1000))
        await stream.__anext__()
        await engine.abort("slow")
        with pytest.raises(EngineAborted):
            await stream.__anext__()

        order: list[str] = []

        async def run(request_id: str, priority: int, delay: float) -> None:
            await asyncio.sleep(delay)
            request = GenerationRequest(request_id, "x", SamplingParams(max_tokens=3), priority)
            await collect(engine, request)
            order.append(request_id)

        tasks = [
            asyncio.create_task(run("first", 0, 0)),
            asyncio.create_task(run("batch", 2, 0.01)),
            asyncio.create_task(run("realtime", 0, 0.02)),
        ]
        await asyncio.sleep(0.05)
        assert engine.stats() == {"running": 1, "waiting": 2}  # type: ignore[attr-defined]
        await asyncio.gather(*tasks)
        assert order == ["first", "realtime", "batch"]

    args = {"batch_size": 1, "tokens_per_second": 20}
    run_engine("simulated", None, args, body)


def test_simulated_handles_many_concurrent_requests_cheaply() -> None:
    async def body(engine: Engine) -> None:
        started = time.monotonic()
        results = await asyncio.gather(
            *(collect(engine, req(f"m{i}", f"prompt {i}", max_tokens=64)) for i in range(5000))
        )
        assert all(deltas[-1].completion_tokens == 64 for _, deltas in results)
        assert time.monotonic() - started < 10

    run_engine("simulated", None, {"batch_size": 10000}, body)


# ------------------------------------------------------------------------- registry, vllm


def test_build_engine_unknown_kind() -> None:
    with pytest.raises(ValueError, match="simulated.*transformers.*vllm"):
        build_engine("tensorrt", "m", None, {})


def test_vllm_module_imports_without_vllm() -> None:
    module = importlib.import_module("inference_platform.engines.vllm_engine")
    engine = build_engine("vllm", "m", "/nonexistent", {"max_model_len": 4096, "batch_size": 4})
    assert isinstance(engine, module.VLLMEngine) and engine.kind == "vllm"
    assert engine.max_model_len == 4096
    args = module.vllm_engine_args("/models/x", {"batch_size": 4, "gpu_memory_utilization": 0.5})
    assert args == {
        "model": "/models/x",
        "scheduling_policy": "priority",
        "disable_log_stats": True,
        "max_num_seqs": 4,
        "gpu_memory_utilization": 0.5,
        "enable_prefix_caching": True,
    }
    # An embedding model runs on the pooling runner, where vLLM decides about prefix caching.
    assert "enable_prefix_caching" not in module.vllm_engine_args("/m", {"task": "embed"})
    # The catalog still decides: an operator who wants vLLM's statistics turns them back on.
    assert module.vllm_engine_args("/m", {"disable_log_stats": False})["disable_log_stats"] is False
    if "vllm" not in sys.modules and importlib.util.find_spec("vllm") is None:
        from inference_platform.engines import EngineError

        with pytest.raises(EngineError, match="needs vLLM"):
            asyncio.run(engine.start())


class _FakeAsyncLLM:
    """Stands in for vLLM's AsyncLLM: three delta outputs, or endless ones for abort tests."""

    def __init__(self) -> None:
        self.aborted: list[str] = []

    async def generate(
        self, prompt: dict[str, Any], params: Any, request_id: str, **kwargs: Any
    ) -> AsyncIterator[Any]:
        assert prompt["prompt_token_ids"] and kwargs == {"priority": 1}
        pieces = [("Hello", None), (" wor", None), ("ld", "length")]
        if request_id == "endless":
            pieces = [(" x", None)] * 100_000
        for text, finish in pieces:
            await asyncio.sleep(0.001)
            completion = SimpleNamespace(text=text, token_ids=[1], finish_reason=finish)
            yield SimpleNamespace(outputs=[completion], finished=finish is not None)

    async def abort(self, request_id: str) -> None:
        self.aborted.append(request_id)

    def shutdown(self) -> None:
        pass


def test_vllm_engine_maps_outputs_and_aborts(model_path: Path) -> None:
    from transformers import AutoTokenizer

    from inference_platform.engines.vllm_engine import VLLMEngine

    async def main() -> None:
        engine = VLLMEngine("m", str(model_path), {})
        fake = _FakeAsyncLLM()
        engine._llm, engine._use_priority = fake, True
        engine._tokenizer = AutoTokenizer.from_pretrained(model_path)
        engine._sampling_params = lambda params, stream=True: params  # type: ignore[method-assign]
        request = GenerationRequest("r", "Hi", SamplingParams(max_tokens=3), priority=1)
        text, deltas = await collect(engine, request)
        assert text == "Hello world"
        assert deltas[-1] == Delta("ld", "length", engine.count_tokens("Hi"), 3)

        stream = engine.generate(GenerationRequest("endless", "Hi", priority=1))
        await stream.__anext__()
        await engine.abort("endless")
        with pytest.raises(EngineAborted):
            async for _ in stream:
                pass
        assert fake.aborted == ["endless"]
        with pytest.raises(ContextLengthError):
            await collect(engine, req("big", "Hi", max_tokens=5000))
        await engine.stop()

    asyncio.run(main())
