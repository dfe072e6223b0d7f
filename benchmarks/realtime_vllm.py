"""Concurrent realtime streams on real vLLM: the platform against vLLM's own `vllm serve`.

The demo model on vLLM's CPU build, the same engine settings both ways (``max_num_seqs``,
context, dtype, eager mode, no chunked prefill, priority scheduling), one engine at a time:

* platform: the API, a control role and one worker taking the realtime queue (the stack of
  ``batch_throughput.py``), Postgres and Redis;
* vllm serve: vLLM's OpenAI-compatible server, the anchor a user would otherwise pick.

For each N, N streamed chat completions are sent at once from one async client; the table
shows errors, time to first token and total time (p50 / p95). Run from the repository root:

    .venv/bin/python benchmarks/realtime_vllm.py [--sizes 16,64] [--tokens 64] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from batch_throughput import MAX_MODEL_LEN, MODEL, start_stack  # noqa: E402
from realtime_concurrency import burst, percentile  # noqa: E402

from inference_platform.demo_model import build_demo_model  # noqa: E402
from inference_platform.engines.vllm_engine import cpu_defaults  # noqa: E402
from tests.stack import free_port  # noqa: E402


@contextmanager
def platform(var: Path, path: Path, batch_size: int) -> Iterator[tuple[str, str]]:
    """The API, a control role and one worker taking the realtime queue."""
    var.mkdir(parents=True, exist_ok=True)
    stack, key, services = start_stack(var, path, batch_size, "realtime")
    try:
        yield stack.base_url, key
    finally:
        stack.stop()
        services.stop()


@contextmanager
def vllm_serve(var: Path, path: Path, batch_size: int) -> Iterator[tuple[str, str]]:
    """`vllm serve` with the engine arguments the platform's worker uses."""
    var.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = cpu_defaults({"max_model_len": MAX_MODEL_LEN, "max_num_seqs": batch_size})
    # vLLM's OpenAI server module: the `vllm serve` command of the CPU build looks its own
    # version up under the GPU package's name and exits.
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(path),
        "--served-model-name",
        MODEL,
        "--port",
        str(port),
        "--max-model-len",
        str(args["max_model_len"]),
        "--max-num-seqs",
        str(args["max_num_seqs"]),
        "--dtype",
        str(args["dtype"]),
        "--scheduling-policy",
        "priority",
        "--no-enable-chunked-prefill",
        "--enforce-eager",
    ]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
    log = open(var / "vllm-serve.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 600
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"vllm serve exited; see {var / 'vllm-serve.log'}")
            try:
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("vllm serve did not start in 600 s")
            time.sleep(1)
        yield base, "unused"
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16,64")
    parser.add_argument("--tokens", type=int, default=64, help="max_tokens of each request")
    parser.add_argument("--batch-size", type=int, default=16, help="the engine's max_num_seqs")
    parser.add_argument("--runs", type=int, default=3, help="bursts per size (median shown)")
    parser.add_argument(
        "--servers", default="platform,vllm serve", help="which to run, comma-separated"
    )
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    var = Path(tempfile.mkdtemp(prefix="bench-rt-vllm-"))
    os.environ.setdefault("VLLM_CACHE_ROOT", str(var / "vllm-cache"))
    path = build_demo_model(var / "models" / "demo")
    rows = []
    servers = {"platform": platform, "vllm serve": vllm_serve}
    for name in args.servers.split(","):
        server = servers[name]
        with server(var / name.replace(" ", "-"), path, args.batch_size) as (base, key):
            asyncio.run(burst(base, key, 4, True, "sdk", MODEL, args.tokens))  # warm-up
            for n in sizes:
                results = [
                    asyncio.run(burst(base, key, n, True, "sdk", MODEL, args.tokens))
                    for _ in range(args.runs)
                ]
                ttft = sorted(results, key=lambda r: percentile(r.ttft, 0.5))[len(results) // 2]
                errors = sum(sum(r.errors.values()) for r in results)
                rows.append(
                    f"| {name} | {n} | {errors} | {percentile(ttft.ttft, 0.5):.2f} / "
                    f"{percentile(ttft.ttft, 0.95):.2f} s | {percentile(ttft.total, 0.5):.2f} / "
                    f"{percentile(ttft.total, 0.95):.2f} s |"
                )
                print(rows[-1], flush=True)
    print(
        f"\nvLLM CPU build, demo model, max_num_seqs {args.batch_size}, {args.tokens} tokens per "
        f"answer, streamed, async openai SDK; the median burst of {args.runs} per size\n"
    )
    print("| server | N | errors | TTFT p50 / p95 | total p50 / p95 |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
