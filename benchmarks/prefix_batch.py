"""A shared-prefix batch on real vLLM: naive use of the engine against the platform.

The workload: D documents of about T tokens each, Q questions about each document, every
question one completion request (the document, then the question), shuffled into one file,
each line generating exactly M tokens. The engine's KV cache holds far fewer blocks than all
the documents need, so a document's prefix stays cached only while its questions run close
together. It runs three ways with the same engine settings:

* engine, file order: ``vllm.LLM.generate`` with every prompt at once, in file order;
* engine, sorted by prefix: the same, sorted by document (what a careful user would do);
* platform: the file as one batch through the API -> control -> one vLLM worker -> Postgres,
  timed from upload until the output file is read. Its workers claim a batch's lines grouped
  by prompt prefix, and its usage reports vLLM's cached prompt tokens per line.

Each way prints tokens per second (prompt and output tokens processed per second of wall
time) and the share of prompt tokens vLLM served from its prefix cache; the last line is the
platform's throughput over the engine's in file order. Run from the repository root (vLLM's
CPU build installed, as ``make install`` does):

    .venv/bin/python benchmarks/prefix_batch.py [--docs 40] [--questions 5] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.batch_throughput import run_batch_file, settle, start_stack  # noqa: E402
from inference_platform.demo_model import build_demo_model  # noqa: E402
from inference_platform.engines.tokenizer import ModelTokenizer  # noqa: E402
from inference_platform.engines.vllm_engine import cpu_defaults, vllm_engine_args  # noqa: E402
from tests.stack import Stack  # noqa: E402

MODEL = "demo-vllm"  # the name batch_throughput.start_stack serves
COMPLETIONS = "/v1/completions"
WORDS = (
    "the sea river town light music garden story morning quiet bright letter road stone "
    "winter harbor lantern meadow copper signal falcon orchard valley thunder"
).split()


def make_lines(tok: ModelTokenizer, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The shuffled batch lines: (document, question) completions, ``doc`` kept aside."""
    rng = random.Random(args.seed)
    lines = []
    for d in range(args.docs):
        words = [rng.choice(WORDS) for _ in range(args.doc_tokens * 2)]
        doc = tok.decode(tok.encode(f"Document {d}: " + " ".join(words))[: args.doc_tokens])
        for q in range(args.questions):
            prompt = f"{doc}\n\nQuestion {q}: what does the document say about {rng.choice(WORDS)}?"
            body = {
                "model": MODEL,
                "prompt": prompt,
                "max_tokens": args.max_tokens,
                "ignore_eos": True,  # every line does the same work in every run
                "temperature": 0.0,
            }
            lines.append({"custom_id": f"d{d}-q{q}", "body": body, "doc": d})
    rng.shuffle(lines)
    return lines


def engine_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The catalog's engine_args for the platform's worker; the bare engine gets the same."""
    return {
        # The document, the question and the output, with room to spare.
        "max_model_len": args.doc_tokens + 64 + args.max_tokens,
        "num_gpu_blocks_override": args.kv_blocks,
        **args.engine_args,
    }


def bare_llm(path: Path, args: argparse.Namespace) -> Any:
    """``vllm.LLM`` with the keyword arguments the platform's engine gives ``AsyncLLM``."""
    from vllm import LLM

    kwargs = cpu_defaults(vllm_engine_args(str(path), engine_settings(args)))
    kwargs["max_num_seqs"] = args.batch_size
    kwargs.pop("scheduling_policy", None)  # LLM.generate takes no priorities
    # As the platform's engine sets it (vLLM's own default reserves most of the memory).
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    return LLM(**kwargs)


def run_bare(
    llm: Any, tok: ModelTokenizer, lines: list[dict[str, Any]]
) -> tuple[float, int, int, int]:
    """(seconds, prompt tokens, cached prompt tokens, output tokens) of one LLM.generate."""
    from vllm import SamplingParams

    prompts = [{"prompt_token_ids": tok.encode(line["body"]["prompt"])} for line in lines]
    params = SamplingParams(
        max_tokens=lines[0]["body"]["max_tokens"], ignore_eos=True, temperature=0
    )
    llm.reset_prefix_cache()  # every run starts cold, as the platform's engine did once
    started = time.perf_counter()
    outputs = llm.generate(prompts, params, use_tqdm=False)
    seconds = time.perf_counter() - started
    prompt = sum(len(o.prompt_token_ids) for o in outputs)
    cached = sum(o.num_cached_tokens or 0 for o in outputs)
    output = sum(len(o.outputs[0].token_ids) for o in outputs)
    return seconds, prompt, cached, output


def run_platform(
    stack: Stack, key: str, lines: list[dict[str, Any]]
) -> tuple[float, int, int, int]:
    """One batch file through the platform, timed from upload until the output is read."""
    batch, results, seconds = run_batch_file(
        stack,
        key,
        [
            {"custom_id": x["custom_id"], "method": "POST", "url": COMPLETIONS, "body": x["body"]}
            for x in lines
        ],
    )
    usage = [x["response"]["body"]["usage"] for x in results]
    if len(usage) != len(lines):
        raise RuntimeError(f"{len(usage)} results for {len(lines)} lines")
    cached = sum(u["prompt_tokens_details"]["cached_tokens"] for u in usage)
    # batch.usage says the same as the lines (it is what the batch is billed).
    if batch["usage"]["input_tokens_details"]["cached_tokens"] != cached:
        raise RuntimeError(f"batch.usage {batch['usage']} disagrees with its lines ({cached})")
    prompt = sum(u["prompt_tokens"] for u in usage)
    output = sum(u["completion_tokens"] for u in usage)
    return seconds, prompt, cached, output


def report(results: dict[str, list[tuple[float, int, int, int]]], args: argparse.Namespace) -> None:
    print(
        f"\n{args.docs} documents of {args.doc_tokens} tokens x {args.questions} questions "
        f"= {args.docs * args.questions} completions of {args.max_tokens} tokens, shuffled; "
        f"vLLM max_num_seqs {args.batch_size}, KV cache {args.kv_blocks} blocks; "
        f"median of {args.runs} alternating runs\n"
    )
    head = f"| {'path':<28} | {'seconds':>8} | {'tokens/s':>9} | {'output tok/s':>12} |"
    print(f"{head} cache share | runs (s)")
    print(f"|{'-' * 30}|{'-' * 10}|{'-' * 11}|{'-' * 14}|{'-' * 13}|{'-' * 10}")
    rates = {}
    for name, runs in results.items():
        seconds = statistics.median(r[0] for r in runs)
        _, prompt, _, output = runs[0]
        share = statistics.median(r[2] / r[1] for r in runs)
        rates[name] = (prompt + output) / seconds
        each = " ".join(f"{r[0]:.2f}" for r in runs)
        print(
            f"| {name:<28} | {seconds:8.2f} | {rates[name]:9.0f} | {output / seconds:12.1f} "
            f"| {share:11.1%} | {each}"
        )
    ratio = rates["platform"] / rates["engine, file order"]
    print(f"\nplatform/engine(file order) throughput ratio: {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100)
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--doc-tokens", type=int, default=1000)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16, help="the engine's max_num_seqs")
    parser.add_argument(
        "--kv-blocks",
        type=int,
        default=320,
        help="KV cache blocks of each engine (num_gpu_blocks_override); on vLLM's CPU build a "
        "block holds 128 tokens, and the default holds the running requests and about a fifth "
        "of the documents",
    )
    parser.add_argument("--runs", type=int, default=3, help="alternating runs of each path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--engine-args", type=json.loads, default={}, help="JSON of further engine_args"
    )
    args = parser.parse_args()
    if __import__("importlib").util.find_spec("vllm") is None:
        raise SystemExit("vLLM is not installed; `make install` adds its CPU build")

    var = Path(tempfile.mkdtemp(prefix="bench-prefix-"))
    os.environ.setdefault("VLLM_CACHE_ROOT", str(var / "vllm-cache"))
    path = build_demo_model(var / "models" / "demo")
    tok = ModelTokenizer.load(str(path))
    # One workload per run (other seeds: other documents), so no run finds in the cache
    # what an earlier one left there; every path gets the same workloads.
    workloads = [
        make_lines(tok, argparse.Namespace(**{**vars(args), "seed": args.seed + r}))
        for r in range(args.runs)
    ]
    stack, key, services = start_stack(
        var, path, args.batch_size, "batch", extra_args=engine_settings(args)
    )
    results: dict[str, list[tuple[float, int, int, int]]] = {
        "engine, file order": [],
        "engine, sorted by prefix": [],
        "platform": [],
    }
    try:
        llm = bare_llm(path, args)
        for run, lines in enumerate(workloads):
            by_doc = sorted(lines, key=lambda x: x["doc"])
            settle(stack)
            results["engine, file order"].append(run_bare(llm, tok, lines))
            settle(stack)
            results["engine, sorted by prefix"].append(run_bare(llm, tok, by_doc))
            settle(stack)
            results["platform"].append(run_platform(stack, key, lines))
            print(
                f"run {run + 1}: " + ", ".join(f"{k} {v[-1][0]:.2f} s" for k, v in results.items()),
                flush=True,
            )
    finally:
        stack.stop()
        services.stop()
    report(results, args)


if __name__ == "__main__":
    main()
