"""Check the ``vllm`` engine against the vLLM a host has (written for the GPU hosts' vLLM 0.26).

The engine is built and started the way a worker does it (catalog entry -> ``build_engine`` ->
``EngineHost``, see ``workers.main.run_worker``), once, on the demo model (random weights, a
BPE tokenizer with the Hermes tool-call tokens); then, on that one engine:

* greedy generation: ``max_tokens``, ``finish_reason`` and usage, the same text twice;
* streaming: several deltas that add up to the greedy text, running usage totals;
* ``n=2`` the platform's way (two requests, seeds ``seed + j``), with the prompt tokens vLLM's
  prefix cache served to each choice, beside vLLM's own ``n=2`` on the same prompt;
* the same seed gives the same text, and a stop string cuts that text where it occurs;
* a prompt longer than the context raises ``ContextLengthError`` before vLLM sees it;
* priorities 0, 1 and 2 accepted; an aborted running request frees its slot;
* log probabilities with ``top_logprobs``, streamed and not;
* structured output from a JSON schema; the catalog's ``hermes`` tool parser;
* throughput through the host, 256 requests of 128 tokens out (``ignore_eos``), and the same
  requests sent straight to the engine's ``AsyncLLM``;

then an embedding engine (catalog ``"task": "embed"``) embeds two strings. It prints the vLLM
version, start-up seconds and a PASS/FAIL table, and writes the table to ``OUT/result.md``.

Run from the repository root, with vLLM importable (on the GPU host, after the vLLM bundle's
``device_env.sh``)::

    PYTHONPATH=. python3 benchmarks/gpu/check_vllm_engine.py [--out DIR] [--no-embed]

It also runs on vLLM's CPU build (slowly, with the CPU defaults the engine applies there).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import struct
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from inference_platform.catalog import EMBED, ModelSpec, load_catalog  # noqa: E402
from inference_platform.demo_model import (  # noqa: E402
    build_demo_embedding_model,
    build_demo_model,
)
from inference_platform.engines import build_engine  # noqa: E402
from inference_platform.engines.base import (  # noqa: E402
    ContextLengthError,
    Delta,
    Embedded,
    EmbeddingRequest,
    EngineAborted,
    GenerationRequest,
    SamplingParams,
    StructuredOutput,
)
from inference_platform.engines.host import EngineHost  # noqa: E402
from inference_platform.engines.vllm_engine import VLLMEngine, vllm_version  # noqa: E402
from inference_platform.settings import Settings  # noqa: E402

CHAT_MODEL = "demo-vllm"
EMBED_MODEL = "demo-vllm-embed"
MAX_MODEL_LEN = 1024
BATCH_SIZE = 256
# Each request's wait; a hang fails its check instead of the whole run.
TIMEOUT = 120.0
PROMPT = "<|user|>\nTell me about the sea and the mountains.</s>\n<|assistant|>\n"
# About 200 tokens: many full KV blocks for the prefix cache to share between choices.
LONG_PROMPT = (
    "<|user|>\n" + "the quiet river runs past the old town " * 25 + "</s>\n<|assistant|>\n"
)
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city", "unit"],
        },
    },
}
CITY_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z ]{1,12}$"},
        "unit": {"enum": ["c", "f"]},
    },
    "required": ["name", "unit"],
    "additionalProperties": False,
}


# ----------------------------------------------------------------------------- results


@dataclass
class Row:
    check: str
    ok: bool
    detail: str


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)

    def run(self, name: str, check: Callable[[], tuple[bool, str]]) -> None:
        """Run one check; an exception fails it (with its message) and the run goes on."""
        started = time.monotonic()
        try:
            ok, detail = check()
        except Exception as exc:
            traceback.print_exc()
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        detail = f"{detail} ({time.monotonic() - started:.1f} s)"
        self.rows.append(Row(name, ok, detail))
        print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)

    def markdown(self) -> str:
        lines = [f"- {k}: {v}" for k, v in self.facts.items()]
        lines += ["", "| check | result | detail |", "|---|---|---|"]
        for row in self.rows:
            detail = row.detail.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {row.check} | {'PASS' if row.ok else 'FAIL'} | {detail} |")
        passed = sum(r.ok for r in self.rows)
        lines += ["", f"{passed}/{len(self.rows)} checks passed"]
        return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- driving the host


@dataclass
class Outcome:
    """What one request produced: its deltas, or the exception that ended it."""

    deltas: list[Delta] = field(default_factory=list)
    error: BaseException | None = None
    embedded: Embedded | None = None

    @property
    def text(self) -> str:
        return "".join(d.text for d in self.deltas)

    @property
    def final(self) -> Delta:
        if self.error is not None:
            raise self.error
        return self.deltas[-1]


def submit(
    host: EngineHost, request: GenerationRequest | EmbeddingRequest
) -> tuple[Outcome, Future[None]]:
    outcome = Outcome()

    def sink(item: Delta | Embedded | BaseException) -> None:
        if isinstance(item, BaseException):
            outcome.error = item
        elif isinstance(item, Embedded):
            outcome.embedded = item
        else:
            outcome.deltas.append(item)

    return outcome, host.submit(request, sink)


def run(
    host: EngineHost, requests: Sequence[GenerationRequest | EmbeddingRequest]
) -> list[Outcome]:
    """Submit ``requests`` together and wait for all of them."""
    pending = [submit(host, r) for r in requests]
    for _, future in pending:
        future.result(TIMEOUT)
    return [outcome for outcome, _ in pending]


def one(host: EngineHost, request: GenerationRequest) -> Outcome:
    return run(host, [request])[0]


def gen(request_id: str, prompt: str = PROMPT, **params: Any) -> GenerationRequest:
    stream = params.pop("stream", True)
    priority = params.pop("priority", 0)
    tools = params.pop("tools", None)
    return GenerationRequest(
        request_id, prompt, SamplingParams(**params), priority, stream=stream, tools=tools
    )


# ----------------------------------------------------------------------------- catalog, start


def catalog_entries(chat: Path, embed: Path, gpu_share: float | None) -> list[dict[str, Any]]:
    """Catalog entries as an operator writes them; on GPUs each engine takes a share of memory."""
    memory = {} if gpu_share is None else {"gpu_memory_utilization": gpu_share}
    return [
        {
            "name": CHAT_MODEL,
            "engine": "vllm",
            "path": str(chat),
            "engine_args": {"max_model_len": MAX_MODEL_LEN, **memory},
            "tool_parser": "hermes",
        },
        {
            "name": EMBED_MODEL,
            "engine": "vllm",
            "path": str(embed),
            "task": "embed",
            "engine_args": {"max_model_len": MAX_MODEL_LEN, **memory},
        },
    ]


def start_host(spec: ModelSpec, batch_size: int) -> tuple[EngineHost, float]:
    """Build and start the engine as ``workers.main.run_worker`` does for a worker serving
    every tier of ``spec``; returns the host and the start-up seconds."""
    engine_args = {"batch_size": batch_size, **spec.engine_args}
    if spec.task == EMBED:
        engine_args["task"] = EMBED
    engine = build_engine(
        spec.engine, spec.name, spec.path, engine_args, tool_parser=spec.tool_parser
    )
    host = EngineHost(engine, background_slots=max(1, batch_size * 3 // 4))
    started = time.monotonic()
    host.start()
    return host, time.monotonic() - started


def vllm_engine(host: EngineHost) -> VLLMEngine:
    assert isinstance(host.engine, VLLMEngine)
    return host.engine


def watch_cached_tokens(host: EngineHost) -> dict[str, int]:
    """Record, per request id, the prompt tokens vLLM's prefix cache served (read from the
    final ``RequestOutput``); the engine's outputs pass through unchanged."""
    llm = vllm_engine(host)._llm
    original = llm.generate
    seen: dict[str, int] = {}

    async def generate(prompt: Any, params: Any, request_id: str, **kw: Any) -> Any:
        async for output in original(prompt, params, request_id, **kw):
            if output.finished:
                seen[request_id] = int(output.num_cached_tokens or 0)
            yield output

    llm.generate = generate
    return seen


# ----------------------------------------------------------------------------- checks


def check_greedy(host: EngineHost) -> tuple[bool, str]:
    a, b = run(
        host,
        [
            gen(f"greedy{i}", max_tokens=16, temperature=0.0, stream=False, ignore_eos=True)
            for i in range(2)
        ],
    )
    final = a.final
    prompt_tokens = host.count_tokens(PROMPT)
    ok = (
        final.finish_reason == "length"
        and final.completion_tokens == 16
        and final.prompt_tokens == prompt_tokens
        and bool(a.text)
        and a.text == b.text
        and len(a.deltas) == 1
    )
    return ok, (
        f"finish={final.finish_reason} usage={final.prompt_tokens}+{final.completion_tokens} "
        f"(prompt counted here: {prompt_tokens}); same text twice: {a.text == b.text}; "
        f"text={a.text[:40]!r}"
    )


def check_stream(host: EngineHost) -> tuple[bool, str]:
    whole = one(host, gen("whole", max_tokens=32, temperature=0.0, stream=False, ignore_eos=True))
    streamed = one(host, gen("streamed", max_tokens=32, temperature=0.0, ignore_eos=True))
    totals = [d.completion_tokens for d in streamed.deltas]
    ok = (
        len(streamed.deltas) > 1
        and streamed.text == whole.text
        and totals == sorted(totals)
        and streamed.final.completion_tokens == 32
        and all(d.finish_reason is None for d in streamed.deltas[:-1])
    )
    return ok, (
        f"{len(streamed.deltas)} deltas, running totals up to {totals[-1] if totals else 0}, "
        f"text equals the non-streamed greedy text: {streamed.text == whole.text}"
    )


def check_n2(host: EngineHost, cached: dict[str, int]) -> tuple[bool, str]:
    choices = run(
        host,
        [
            gen(
                f"n2:{j}",
                LONG_PROMPT,
                max_tokens=8,
                temperature=1.0,
                seed=7 + j,
                ignore_eos=True,
                stream=False,
            )
            for j in range(2)
        ],
    )
    finals = [c.final for c in choices]
    ours = [cached.get(f"n2:{j}", -1) for j in range(2)]
    theirs = vllm_own_n(host)
    ok = all(f.completion_tokens == 8 and f.finish_reason == "length" for f in finals)
    # The platform's claim (generation.py): no more prefill than vLLM's own n.
    ok = ok and choices[0].text != choices[1].text and sum(ours) >= sum(theirs)
    return ok, (
        f"prompt {finals[0].prompt_tokens} tokens; prefix-cache hits per choice {ours} "
        f"(vLLM's own n=2 on the same prompt: {theirs}); choices differ: "
        f"{choices[0].text != choices[1].text}"
    )


def vllm_own_n(host: EngineHost) -> list[int]:
    """Cached prompt tokens per output of vLLM's own ``n=2``, on a prompt it has not seen."""
    from vllm import SamplingParams as VllmParams
    from vllm.sampling_params import RequestOutputKind

    engine = vllm_engine(host)
    ids = engine._require_tokenizer().encode(LONG_PROMPT.replace("river", "brook"))
    # DELTA: each output arrives alone, with the prefix-cache hits of its own child request.
    params = VllmParams(
        n=2, max_tokens=8, seed=3, ignore_eos=True, output_kind=RequestOutputKind.DELTA
    )

    async def go() -> list[int]:
        hits: dict[int, int] = {}
        async for out in engine._llm.generate({"prompt_token_ids": ids}, params, "own-n2"):
            for completion in out.outputs:
                hits[completion.index] = int(out.num_cached_tokens or 0)
        return [hits[i] for i in sorted(hits)]

    result: list[int] = host.call(go(), timeout=TIMEOUT)
    return result


def check_seed_and_stop(host: EngineHost) -> tuple[bool, str]:
    kw: dict[str, Any] = {"max_tokens": 24, "temperature": 1.0, "seed": 7}
    first = one(host, gen("seed-a", ignore_eos=True, **kw)).text
    again = one(host, gen("seed-b", ignore_eos=True, **kw)).text
    other = one(host, gen("seed-c", ignore_eos=True, **{**kw, "seed": 8})).text
    # A word (from the third on) whose first occurrence is past the start: the cut is not empty.
    stops = [f" {w}" for w in first.split()[2:] if first.find(f" {w}") > 0]
    if not stops:
        return False, f"no word to use as a stop string in {first!r}"
    stop = stops[0]
    cut = one(host, gen("seed-stop", stop=(stop,), ignore_eos=True, **kw))
    want = first[: first.index(stop)]
    ok = bool(first) and again == first and cut.text == want and cut.final.finish_reason == "stop"
    return ok, (
        f"seed 7 twice equal: {again == first}; seed 8 differs: {other != first}; "
        f"stop {stop!r} -> {cut.text!r} finish={cut.final.finish_reason}"
    )


def check_context(host: EngineHost) -> tuple[bool, str]:
    too_long = "<|user|>\n" + "hello " * (MAX_MODEL_LEN + 50)
    long_prompt, no_room = run(
        host,
        [
            gen("ctx-long", too_long, max_tokens=8),
            gen("ctx-room", LONG_PROMPT, max_tokens=MAX_MODEL_LEN),
        ],
    )
    ok = isinstance(long_prompt.error, ContextLengthError) and isinstance(
        no_room.error, ContextLengthError
    )
    return ok, (
        f"too-long prompt: {type(long_prompt.error).__name__}; prompt + max_tokens past the "
        f"context: {type(no_room.error).__name__}: {str(no_room.error)[:70]}"
    )


def check_priorities(host: EngineHost) -> tuple[bool, str]:
    outcomes = run(
        host, [gen(f"prio{p}", max_tokens=16, priority=p, ignore_eos=True) for p in (2, 1, 0)]
    )
    ok = all(o.error is None and o.final.completion_tokens == 16 for o in outcomes)
    errors = [repr(o.error) for o in outcomes if o.error is not None]
    return ok, f"priorities 2, 1, 0 finished: {ok}; errors: {errors or 'none'}"


def check_abort(host: EngineHost) -> tuple[bool, str]:
    engine = vllm_engine(host)
    outcome, future = submit(host, gen("abortme:0", max_tokens=900, ignore_eos=True))
    deadline = time.monotonic() + TIMEOUT
    # Running: a few tokens out before the abort.
    while outcome.error is None and time.monotonic() < deadline:
        if outcome.deltas and outcome.deltas[-1].completion_tokens >= 4:
            break
        time.sleep(0.005)
    aborted = host.abort_group("abortme")
    future.result(TIMEOUT)
    time.sleep(0.5)
    unfinished = engine._llm.output_processor.get_num_unfinished_requests()
    tokens = outcome.deltas[-1].completion_tokens if outcome.deltas else 0
    after = one(host, gen("after-abort", max_tokens=8, ignore_eos=True))
    ok = (
        aborted
        and isinstance(outcome.error, EngineAborted)
        and tokens < 900
        and engine.stats()["active"] == 0
        and unfinished == 0
        and after.final.completion_tokens == 8
    )
    return ok, (
        f"aborted after {tokens}/900 tokens with {type(outcome.error).__name__}; engine "
        f"streams left {engine.stats()['active']}, vLLM unfinished {unfinished}; next request ok"
    )


def check_logprobs(host: EngineHost) -> tuple[bool, str]:
    kw: dict[str, Any] = {"max_tokens": 8, "temperature": 0.0, "logprobs": 3, "ignore_eos": True}
    whole, streamed = run(host, [gen("lp-whole", stream=False, **kw), gen("lp-stream", **kw)])
    problems = []
    for name, outcome in (("whole", whole), ("streamed", streamed)):
        entries = [lp for d in outcome.deltas for lp in d.logprobs]
        if len(entries) != 8:
            problems.append(f"{name}: {len(entries)} entries")
        for lp in entries:
            if len(lp.top) != 3 or lp.logprob > 0 or lp.top[0][0] != lp.token:
                problems.append(f"{name}: {lp}")
                break
        if "".join(lp.token for lp in entries) != outcome.text:
            problems.append(f"{name}: tokens do not spell the text")
    first = [lp for d in whole.deltas for lp in d.logprobs][:1]
    return not problems, "; ".join(problems) or f"8 entries each way, 3 top, e.g. {first}"


def check_json_schema(host: EngineHost) -> tuple[bool, str]:
    spec = StructuredOutput(json=json.dumps(CITY_SCHEMA))
    outcome = one(host, gen("schema", max_tokens=96, seed=1, structured=spec, stream=False))
    text = outcome.text
    value = json.loads(text)
    # Whitespace is fixed, never free: compact (vLLM 0.32) or xgrammar's ", " and ": " (0.26).
    forms = {"compact": json.dumps(value, separators=(",", ":")), "one space": json.dumps(value)}
    form = next((name for name, form in forms.items() if form == text), None)
    ok = (
        set(value) == {"name", "unit"}
        and value["unit"] in ("c", "f")
        and 1 <= len(value["name"]) <= 12
        and form is not None
        and outcome.final.finish_reason == "stop"
    )
    return ok, f"finish={outcome.final.finish_reason} whitespace={form} text={text!r}"


def check_tool_parser(host: EngineHost) -> tuple[bool, str]:
    engine = vllm_engine(host)
    parser = engine._tool_parser()
    tools = json.dumps([WEATHER_TOOL])
    call = '<tool_call>{"name": "get_weather", "arguments": {"city": "paris", "unit": "c"}}'
    parsed = json.loads(parser.parse("Checking. " + call + "</tool_call>", tools))
    marker = engine._require_tokenizer().raw.convert_tokens_to_ids("<tool_call>")
    bias = ((int(marker), 100.0),)
    live = one(host, gen("tools", max_tokens=3, logit_bias=bias, tools=tools))
    envelope = json.loads(live.text)
    ok = (
        parsed["tool_calls"]
        == [{"name": "get_weather", "arguments": '{"city": "paris", "unit": "c"}'}]
        and parsed["content"] == "Checking. "
        and str(envelope["content"]).startswith("<tool_call>")
        and live.final.finish_reason == "length"
    )
    return ok, (
        f"parser {parser.name} ({parser._cls.__name__}); known text -> "
        f"{parsed['tool_calls']}; live output envelope {live.text[:60]!r}"
    )


def throughput(host: EngineHost, n: int = 256, tokens: int = 128) -> tuple[bool, str]:
    """Output tokens per second through the host and straight into the same ``AsyncLLM``
    (vLLM's own front end, no platform code), with the same settings. A warm-up first (vLLM
    compiles kernels on the first use of a sampling path), and prompts of their own for each
    run, so neither finds the other's in the prefix cache. Priority 0: the host's cap on
    background work in flight stays out of the comparison."""
    params = {"max_tokens": tokens, "temperature": 0.8, "top_p": 0.95, "ignore_eos": True}

    def batch(first: int, count: int) -> list[GenerationRequest]:
        return [
            gen(f"tp{i}:0", f"{PROMPT} {i}", stream=False, **params)
            for i in range(first, first + count)
        ]

    run(host, batch(2 * n, 32))
    started = time.monotonic()
    outcomes = run(host, batch(0, n))
    ours = time.monotonic() - started
    out = sum(o.final.completion_tokens for o in outcomes)
    bare, bare_out = bare_throughput(host, batch(n, n))
    return out == bare_out == n * tokens, (
        f"{n} x {tokens} tokens: EngineHost {out / ours:,.0f} out tok/s ({ours:.2f} s); "
        f"bare AsyncLLM.generate on the same engine {bare_out / bare:,.0f} out tok/s "
        f"({bare:.2f} s)"
    )


def bare_throughput(host: EngineHost, requests: Sequence[GenerationRequest]) -> tuple[float, int]:
    """Seconds and output tokens for ``requests`` sent to the engine's ``AsyncLLM`` directly."""
    import asyncio

    engine = vllm_engine(host)
    tok = engine._require_tokenizer()
    prompts = [tok.encode(r.prompt) for r in requests]
    params = engine._sampling_params(requests[0].params, stream=False)

    async def one_request(i: int, ids: list[int]) -> int:
        count = 0
        async for out in engine._llm.generate({"prompt_token_ids": ids}, params, f"bare{i}"):
            count = len(out.outputs[0].token_ids)
        return count

    async def go() -> int:
        return sum(await asyncio.gather(*(one_request(i, p) for i, p in enumerate(prompts))))

    started = time.monotonic()
    out: int = host.call(go(), timeout=TIMEOUT)
    return time.monotonic() - started, out


def check_embeddings(host: EngineHost) -> tuple[bool, str]:
    texts = ["the sea is blue", "a mountain of books"]
    outcomes = run(host, [EmbeddingRequest(f"emb:{i}", text=t) for i, t in enumerate(texts)])
    vectors = []
    for outcome in outcomes:
        if outcome.error is not None:
            raise outcome.error
        assert outcome.embedded is not None
        raw = outcome.embedded.vector
        vectors.append(struct.unpack(f"<{len(raw) // 4}f", raw))
    norms = [math.sqrt(sum(x * x for x in v)) for v in vectors]
    ok = (
        len(vectors[0]) == len(vectors[1]) > 0
        and all(abs(n - 1.0) < 1e-2 for n in norms)
        and vectors[0] != vectors[1]
    )
    return ok, f"{len(vectors[0])} dimensions, norms {[round(n, 4) for n in norms]}, distinct"


# ----------------------------------------------------------------------------- main


def chat_checks(report: Report, host: EngineHost, cached: dict[str, int]) -> None:
    report.run("greedy, max_tokens, finish_reason, usage", lambda: check_greedy(host))
    report.run("streaming deltas", lambda: check_stream(host))
    report.run("n=2 (two requests, seed+j) and prefix cache", lambda: check_n2(host, cached))
    report.run("same seed same text; stop string", lambda: check_seed_and_stop(host))
    report.run("longer than the context: ContextLengthError", lambda: check_context(host))
    report.run("priorities 0/1/2 accepted", lambda: check_priorities(host))
    report.run("abort of a running request frees it", lambda: check_abort(host))
    report.run("logprobs / top_logprobs", lambda: check_logprobs(host))
    report.run("structured output (json schema)", lambda: check_json_schema(host))
    report.run("hermes tool parser", lambda: check_tool_parser(host))


def start_and_check(
    report: Report, name: str, spec: ModelSpec, checks: Callable[[EngineHost], None]
) -> None:
    try:
        host, seconds = start_host(spec, BATCH_SIZE)
    except Exception as exc:
        traceback.print_exc()
        report.rows.append(Row(f"start {name} engine", False, f"{type(exc).__name__}: {exc}"))
        return
    report.facts[f"{name} engine start-up"] = f"{seconds:.1f} s"
    report.rows.append(Row(f"start {name} engine", True, f"ready in {seconds:.1f} s"))
    try:
        checks(host)
    finally:
        host.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", default=os.environ.get("OUT") or ".")
    parser.add_argument("--no-embed", action="store_true", help="skip the embedding engine")
    parser.add_argument("--no-throughput", action="store_true", help="skip the 256-request run")
    args = parser.parse_args(argv)
    report = Report()
    report.facts["vLLM"] = str(vllm_version())
    report.facts["python"] = platform.python_version()
    # vLLM's platform, not torch.cuda: CUDA stays uninitialised here, as in a worker.
    from vllm.platforms import current_platform

    gpu = not current_platform.is_cpu()
    report.facts["device"] = str(current_platform.get_device_name()) if gpu else "cpu"
    root = Path(tempfile.mkdtemp(prefix="vllm-check-"))
    chat_path, embed_path = (
        build_demo_model(root / "chat"),
        build_demo_embedding_model(root / "embed"),
    )
    settings = Settings(
        models=json.dumps(catalog_entries(chat_path, embed_path, 0.3 if gpu else None))
    )
    catalog = load_catalog(settings)

    def chat(host: EngineHost) -> None:
        cached = watch_cached_tokens(host)
        chat_checks(report, host, cached)
        if not args.no_throughput:
            report.run("throughput: EngineHost vs bare AsyncLLM", lambda: throughput(host))

    start_and_check(report, "chat", _spec(catalog.get(CHAT_MODEL)), chat)
    if not args.no_embed:
        embed = _spec(catalog.get(EMBED_MODEL))
        start_and_check(
            report,
            "embed",
            embed,
            lambda host: report.run("embed two strings", lambda: check_embeddings(host)),
        )
    table = report.markdown()
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.md").write_text(table)
    return 0 if all(r.ok for r in report.rows) else 1


def _spec(spec: ModelSpec | None) -> ModelSpec:
    assert spec is not None
    return spec


if __name__ == "__main__":
    sys.exit(main())
