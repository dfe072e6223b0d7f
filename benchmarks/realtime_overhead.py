"""What the platform adds to a realtime request: API -> Celery -> worker -> events -> API.

Starts a real stack (API, one worker, Postgres and Redis), then times the same chat completion
two ways, one request at a time:

* in-process: the same engine called directly through the engine host;
* platform: an HTTP request to the API (keep-alive client), through Celery to the worker.

``--engine simulated`` (default) times a non-streaming request on the simulated engine and
prints p50/p95 of each path and the difference; it exits 1 when the difference at p50 is over
``--max-added-ms`` (10 ms): a lone request must never wait for a tick meant for bursts.
``--engine vllm`` runs the demo model on real vLLM and times streamed requests: time to first
token (TTFT) and total latency, repeated ``--runs`` times in one invocation; the table quotes
the median over the runs of each run's p50 and p95. Run from the repository root:

    .venv/bin/python benchmarks/realtime_overhead.py [--requests 500] [--max-tokens 16]
    .venv/bin/python benchmarks/realtime_overhead.py --engine vllm --requests 50 --runs 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference_platform.db import Database, migrate  # noqa: E402
from inference_platform.engines import build_engine  # noqa: E402
from inference_platform.engines.host import EngineHost  # noqa: E402
from inference_platform.generation import CHAT, GenerationResult, plan  # noqa: E402
from inference_platform.keys import create_key  # noqa: E402
from inference_platform.settings import Settings  # noqa: E402
from tests.stack import Services, Stack, free_port  # noqa: E402

MODEL = "sim"
VLLM_MODEL = "demo-vllm"
VLLM_ARGS = {"max_model_len": 512, "batch_size": 8}
WARMUP = 20
# A lone request that waits for a timer (a poll, a tick, a read's timeout) costs tens of ms
# at once; a median above this is such a wait, not noise, and the run fails.
GUARD_MS = 10.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def body(max_tokens: int, model: str = MODEL, **extra: object) -> dict[str, object]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": "How fast is the platform?"}],
        "max_tokens": max_tokens,
        **extra,
    }


def in_process(n: int, max_tokens: int) -> list[float]:
    host = EngineHost(build_engine("simulated", MODEL, None, {"tokens_per_second": 0}))
    host.start()
    timings = []
    try:
        for i in range(n + 20):
            start = time.perf_counter()
            requests, prompt_of = plan(
                host,
                CHAT,
                body(max_tokens),
                f"bench{i}",
                tier="realtime",
                default_max_tokens=max_tokens,
            )
            # The same accumulation the worker's feed does, without the platform around it.
            result = GenerationResult.empty(prompt_of)
            for index, item in host.stream(requests):
                if isinstance(item, BaseException):
                    raise item
                result.add(index, item)
            if i >= 20:  # warm-up excluded
                timings.append((time.perf_counter() - start) * 1000)
    finally:
        host.stop()
    return timings


def through_platform(base_url: str, key: str, n: int, max_tokens: int) -> list[float]:
    timings = []
    payload = json.dumps(body(max_tokens))
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        for i in range(n + 20):
            start = time.perf_counter()
            r = client.post("/chat/completions", content=payload)
            elapsed = (time.perf_counter() - start) * 1000
            r.raise_for_status()
            if i >= 20:
                timings.append(elapsed)
    return timings


# -- real vLLM: streamed, TTFT and total ----------------------------------------------------

Timing = tuple[float, float]  # (time to first token, total), milliseconds


def vllm_body(max_tokens: int) -> dict[str, object]:
    # ignore_eos: every request generates exactly max_tokens, so the two paths do equal work.
    return body(max_tokens, VLLM_MODEL, ignore_eos=True)


def vllm_in_process(path: Path, runs: int, n: int, max_tokens: int) -> list[list[Timing]]:
    host = EngineHost(build_engine("vllm", VLLM_MODEL, str(path), dict(VLLM_ARGS)))
    host.start()
    out: list[list[Timing]] = []
    try:
        for run in range(runs):
            timings = []
            for i in range(n + WARMUP):
                start = time.perf_counter()
                requests, _ = plan(
                    host,
                    CHAT,
                    vllm_body(max_tokens),
                    f"bench{run}-{i}",
                    tier="realtime",
                    default_max_tokens=max_tokens,
                )
                first = None
                for _, item in host.stream(requests):
                    if isinstance(item, BaseException):
                        raise item
                    if first is None and item.text:
                        first = time.perf_counter()
                end = time.perf_counter()
                if i >= WARMUP:
                    timings.append((((first or end) - start) * 1000, (end - start) * 1000))
            out.append(timings)
    finally:
        host.stop()
    return out


def vllm_through_platform(
    base_url: str, key: str, runs: int, n: int, max_tokens: int
) -> list[list[Timing]]:
    payload = json.dumps({**vllm_body(max_tokens), "stream": True})
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    out: list[list[Timing]] = []
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        for _ in range(runs):
            timings = []
            for i in range(n + WARMUP):
                start = time.perf_counter()
                first = None
                with client.stream("POST", "/chat/completions", content=payload) as r:
                    r.raise_for_status()
                    for line in r.iter_lines():
                        if first is None and line.startswith("data: {"):
                            choices = json.loads(line[6:]).get("choices") or [{}]
                            if choices[0].get("delta", {}).get("content"):
                                first = time.perf_counter()
                end = time.perf_counter()
                if i >= WARMUP:
                    timings.append((((first or end) - start) * 1000, (end - start) * 1000))
            out.append(timings)
    return out


def _medians(runs: list[list[Timing]]) -> list[float]:
    """Median over runs of each run's p50 and p95, TTFT then total."""
    cols = []
    for which in (0, 1):
        per_run = [[t[which] for t in run] for run in runs]
        cols.append(statistics.median(statistics.median(v) for v in per_run))
        cols.append(statistics.median(percentile(v, 0.95) for v in per_run))
    return cols


def vllm_main(args: argparse.Namespace) -> None:
    from inference_platform.demo_model import build_demo_model

    var = Path(tempfile.mkdtemp(prefix="bench-realtime-vllm-"))
    os.environ.setdefault("VLLM_CACHE_ROOT", str(var / "vllm-cache"))
    path = build_demo_model(var / "models" / "demo")
    # One engine at a time on the machine: in-process first, then the platform's worker.
    local = vllm_in_process(path, args.runs, args.requests, args.max_tokens)
    models = [{"name": VLLM_MODEL, "engine": "vllm", "path": str(path), "engine_args": {}}]
    models[0]["engine_args"] = {"max_model_len": VLLM_ARGS["max_model_len"]}
    with platform_stack(var, models, VLLM_MODEL, str(VLLM_ARGS["batch_size"])) as (url, key):
        remote = vllm_through_platform(url, key, args.runs, args.requests, args.max_tokens)

    print(
        f"\nstreamed chat completion, {args.max_tokens} tokens (ignore_eos), real vLLM "
        f"(demo model), {args.requests} sequential requests x {args.runs} runs; "
        "medians over runs\n"
    )
    head = ("TTFT p50", "TTFT p95", "total p50", "total p95")
    print(f"| {'path':<26} | " + " | ".join(f"{h:>10}" for h in head) + " |")
    print(f"|{'-' * 28}|" + "|".join("-" * 12 for _ in head) + "|")
    a, b = _medians(local), _medians(remote)
    for name, cols in (("in-process engine", a), ("API -> Celery -> worker", b)):
        print(f"| {name:<26} | " + " | ".join(f"{c:7.2f} ms" for c in cols) + " |")
    added = [y - x for x, y in zip(a, b, strict=True)]
    print(f"| {'added by the platform':<26} | " + " | ".join(f"{c:7.2f} ms" for c in added) + " |")


@contextlib.contextmanager
def platform_stack(
    var: Path, models: list[dict[str, Any]], model: str, batch_size: str
) -> Iterator[tuple[str, str]]:
    """API and one realtime worker for ``model``; yields (base URL, API key)."""
    services = Services.start(var)
    settings = Settings(
        database_url=services.database_url,
        redis_url=services.redis_url,
        var_dir=str(var),
        models=json.dumps(models),
        port=free_port(),
        web_workers=1,
        log_level="WARNING",
    )
    migrate.upgrade(settings.database_url)
    key, _ = create_key(Database(settings.database_url, pool_size=1), name="bench")
    (var / "logs").mkdir(exist_ok=True)
    stack = Stack(settings, var / "logs")
    try:
        stack.start("web", ["web"])
        stack.start(
            "worker",
            ["worker", "--queues", "realtime", "--model", model, "--concurrency", "8"]
            + ["--batch-size", batch_size],
        )
        stack.wait_api()
        stack.wait_queue(f"realtime.{model}", timeout=600)
        yield stack.base_url, key
    finally:
        stack.stop()
        services.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--engine", choices=("simulated", "vllm"), default="simulated")
    parser.add_argument("--runs", type=int, default=3, help="vllm: repeated runs")
    parser.add_argument(
        "--max-added-ms",
        type=float,
        default=GUARD_MS,
        help="simulated: fail (exit 1) when the platform adds more than this at p50",
    )
    args = parser.parse_args()
    if args.engine == "vllm":
        vllm_main(args)
        return

    var = Path(tempfile.mkdtemp(prefix="bench-realtime-"))
    services = Services.start(var)
    settings = Settings(
        database_url=services.database_url,
        redis_url=services.redis_url,
        var_dir=str(var),
        models=json.dumps(
            [{"name": MODEL, "engine": "simulated", "engine_args": {"tokens_per_second": 0}}]
        ),
        port=free_port(),
        web_workers=1,
        log_level="WARNING",
    )
    migrate.upgrade(settings.database_url)
    key, _ = create_key(Database(settings.database_url, pool_size=1), name="bench")
    (var / "logs").mkdir()
    stack = Stack(settings, var / "logs")
    try:
        stack.start("web", ["web"])
        stack.start(
            "worker", ["worker", "--queues", "realtime", "--model", MODEL, "--concurrency", "8"]
        )
        stack.wait_api()
        stack.wait_queue(f"realtime.{MODEL}")
        local = in_process(args.requests, args.max_tokens)
        remote = through_platform(stack.base_url, key, args.requests, args.max_tokens)
    finally:
        stack.stop()
        services.stop()

    rows = [("in-process engine", local), ("API -> Celery -> worker", remote)]
    print(
        f"\nnon-streaming chat completion, {args.max_tokens} tokens, simulated engine, "
        f"{args.requests} sequential requests\n"
    )
    print(f"| {'path':<26} | {'p50 ms':>8} | {'p95 ms':>8} | {'mean ms':>8} |")
    print(f"|{'-' * 28}|{'-' * 10}|{'-' * 10}|{'-' * 10}|")
    for name, values in rows:
        print(
            f"| {name:<26} | {statistics.median(values):8.2f} | "
            f"{percentile(values, 0.95):8.2f} | {statistics.fmean(values):8.2f} |"
        )
    added50 = statistics.median(remote) - statistics.median(local)
    added95 = percentile(remote, 0.95) - percentile(local, 0.95)
    print(f"| {'added by the platform':<26} | {added50:8.2f} | {added95:8.2f} | {'':>8} |")
    if added50 > args.max_added_ms:
        sys.exit(
            f"\nFAILED: the platform added {added50:.2f} ms at p50 to a lone request, over the "
            f"{args.max_added_ms:g} ms guard: something on the path waits for a timer."
        )


if __name__ == "__main__":
    main()
