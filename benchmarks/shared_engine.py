"""Realtime on an engine that a large batch keeps busy: the `make run` topology on real vLLM.

One vLLM worker takes the realtime, flex and batch queues of the demo model (as `make run`
starts it). The benchmark measures, in one invocation:

* realtime alone: time to first token of streamed chat completions, one after the other;
* batch alone: output tokens per second of one batch file (upload -> output read);
* both: the same batch file again while a client keeps ``--streams`` realtime streams open
  one after the other; the TTFT of those streams and the batch's throughput.

Run from the repository root (vLLM's CPU build installed, as ``make install`` does):

    .venv/bin/python benchmarks/shared_engine.py [--requests 200] [--streams 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import openai

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from batch_throughput import MODEL, make_bodies, run_platform, start_stack  # noqa: E402

from inference_platform.demo_model import build_demo_model  # noqa: E402
from inference_platform.engines.tokenizer import ModelTokenizer  # noqa: E402

MESSAGES = [{"role": "user", "content": "Tell me about the sea and the river."}]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def ttft(client: openai.OpenAI) -> float:
    """Seconds to the first content chunk of one streamed chat completion."""
    started = time.perf_counter()
    stream = client.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        max_tokens=32,
        stream=True,  # type: ignore[arg-type]
    )
    first = None
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter()
    return (first or time.perf_counter()) - started


def realtime_loop(client: openai.OpenAI, stop: threading.Event, out: list[float]) -> None:
    while not stop.is_set():
        out.append(ttft(client))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="lines in the batch file")
    parser.add_argument("--batch-size", type=int, default=16, help="the engine's max_num_seqs")
    parser.add_argument("--streams", type=int, default=2, help="realtime clients under load")
    parser.add_argument("--idle", type=int, default=30, help="realtime requests without load")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if __import__("importlib").util.find_spec("vllm") is None:
        raise SystemExit("vLLM is not installed; `make install` adds its CPU build")

    var = Path(tempfile.mkdtemp(prefix="bench-shared-"))
    os.environ.setdefault("VLLM_CACHE_ROOT", str(var / "vllm-cache"))
    path = build_demo_model(var / "models" / "demo")
    bodies = make_bodies(ModelTokenizer.load(str(path)), args.requests, args.seed)
    stack, key, services = start_stack(var, path, args.batch_size, "realtime,flex,batch")
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    try:
        ttft(client)  # warm-up
        idle = [ttft(client) for _ in range(args.idle)]
        alone_tokens, alone_seconds, _ = run_platform(stack, key, bodies)
        stop, loaded = threading.Event(), [list[float]() for _ in range(args.streams)]
        threads = [
            threading.Thread(target=realtime_loop, args=(client, stop, out)) for out in loaded
        ]
        for t in threads:
            t.start()
        try:
            both_tokens, both_seconds, _ = run_platform(stack, key, bodies)
        finally:
            stop.set()
            for t in threads:
                t.join()
    finally:
        stack.stop()
        services.stop()

    under = [x for out in loaded for x in out]
    print(
        f"\nvLLM CPU, demo model, one worker with realtime,flex,batch, max_num_seqs "
        f"{args.batch_size}; batch of {args.requests} completions; {args.streams} realtime "
        "clients streaming 32 tokens one request after another during the second batch\n"
    )
    print("| realtime TTFT | requests | p50 | p95 |")
    print("|---|---|---|---|")
    for name, values in (("idle engine", idle), ("during the batch", under)):
        print(
            f"| {name} | {len(values)} | {statistics.median(values):.3f} s | "
            f"{percentile(values, 0.95):.3f} s |"
        )
    print("\n| batch | output tokens | seconds | tokens/s |")
    print("|---|---|---|---|")
    for name, tokens, seconds in (
        ("alone", alone_tokens, alone_seconds),
        ("with the realtime streams", both_tokens, both_seconds),
    ):
        print(f"| {name} | {tokens} | {seconds:.1f} | {tokens / seconds:.1f} |")
    ratio = alone_seconds / both_seconds
    print(f"\nbatch throughput with realtime / alone: {ratio:.2f}")


if __name__ == "__main__":
    main()
