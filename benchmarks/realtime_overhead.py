"""What the platform adds to a realtime request: API -> Celery -> worker -> events -> API.

Starts a real stack (API, one worker with the ``simulated`` engine, Postgres and Redis), then
times the same non-streaming chat completion two ways, one request at a time:

* in-process: the simulated engine called directly through the engine host;
* platform: an HTTP request to the API (keep-alive client), through Celery to the worker.

Prints p50/p95 of each and the difference. Run from the repository root:

    .venv/bin/python benchmarks/realtime_overhead.py [--requests 500] [--max-tokens 16]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference_platform.db import Database, migrate  # noqa: E402
from inference_platform.engines import build_engine  # noqa: E402
from inference_platform.engines.host import EngineHost  # noqa: E402
from inference_platform.generation import CHAT, execute, plan  # noqa: E402
from inference_platform.keys import create_key  # noqa: E402
from inference_platform.settings import Settings  # noqa: E402
from tests.stack import Services, Stack, free_port  # noqa: E402

MODEL = "sim"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def body(max_tokens: int) -> dict[str, object]:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": "How fast is the platform?"}],
        "max_tokens": max_tokens,
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
            execute(host, requests, prompt_of)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--max-tokens", type=int, default=16)
    args = parser.parse_args()

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


if __name__ == "__main__":
    main()
