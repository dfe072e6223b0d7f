"""Batch throughput on real vLLM: the engine alone against the whole platform.

The same N completion requests (the demo model, prompts of 100-200 tokens, output limits of
16-256 tokens, a third of them with ``ignore_eos`` so some run to their limit and the rest stop
where the model emits EOS) are run two ways with the same engine settings:

* engine: fed straight to the vLLM engine in this process, all at once, batch priority;
* platform: one JSONL batch file through the API -> control worker -> one vLLM worker ->
  Postgres, timed from upload until the output file is read. Its workers take a batch's lines
  largest output limit first (the engine gets them in file order, as ``LLM.generate`` would),
  so fewer engine steps run with slots empty at the end.

Each way prints output tokens per second; the last line is the platform/engine ratio.
Run from the repository root (vLLM's CPU build installed, as ``make install`` does):

    .venv/bin/python benchmarks/batch_throughput.py [--requests 200] [--batch-size 16] [--runs 3]

On a GPU, give both engines a share of its memory, e.g.
``--engine-args '{"gpu_memory_utilization": 0.35}'`` (vLLM's default of 0.9 leaves no room for the
second engine).
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
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference_platform.db import Database, migrate  # noqa: E402
from inference_platform.demo_model import build_demo_model  # noqa: E402
from inference_platform.engines import build_engine  # noqa: E402
from inference_platform.engines.host import EngineHost  # noqa: E402
from inference_platform.engines.tokenizer import ModelTokenizer  # noqa: E402
from inference_platform.generation import COMPLETIONS, plan  # noqa: E402
from inference_platform.keys import create_key  # noqa: E402
from inference_platform.settings import Settings  # noqa: E402
from tests.stack import Services, Stack, free_port  # noqa: E402

MODEL = "demo-vllm"
MAX_MODEL_LEN = 512
WORDS = "the sea river town light music garden story morning quiet bright letter road".split()


def make_bodies(tokenizer: ModelTokenizer, n: int, seed: int) -> list[dict[str, Any]]:
    """Completion bodies with prompts of 100-200 tokens and varied output limits."""
    rng = random.Random(seed)
    bodies = []
    for i in range(n):
        target = rng.randint(100, 200)
        words = [rng.choice(WORDS) for _ in range(target * 2)]
        ids = tokenizer.encode(" ".join(words))[:target]
        body: dict[str, Any] = {
            "model": MODEL,
            "prompt": tokenizer.decode(ids),
            "max_tokens": rng.randint(16, 256),
            "temperature": 1.0,
            "seed": i,
        }
        if i % 3 == 0:
            body["ignore_eos"] = True
        bodies.append(body)
    return bodies


def engine_args(batch_size: int, extra: dict[str, Any]) -> dict[str, Any]:
    return {"batch_size": batch_size, "max_model_len": MAX_MODEL_LEN, **extra}


def run_engine(host: EngineHost, bodies: list[dict[str, Any]], run: int) -> tuple[int, float]:
    """All requests fed at once to the in-process engine; (output tokens, seconds)."""
    requests = []
    for i, body in enumerate(bodies):
        reqs, _ = plan(host, COMPLETIONS, body, f"r{run}b{i}", tier="batch", default_max_tokens=16)
        # Whole outputs, as LLM.generate returns them (and as the platform runs batch lines).
        requests += [replace(r, stream=False) for r in reqs]
    tokens: dict[int, int] = {}
    started = time.perf_counter()
    for index, item in host.stream(requests):
        if isinstance(item, BaseException):
            raise item
        tokens[index] = item.completion_tokens
    return sum(tokens.values()), time.perf_counter() - started


def cpu_seconds(stack: Stack | None) -> dict[str, float]:
    """CPU seconds used so far by the stack's processes (with their children, such as vLLM's
    engine core), by this process and its children, and by Postgres and Redis."""

    def tree(proc: psutil.Process) -> list[psutil.Process]:
        try:
            return [proc, *proc.children(recursive=True)]
        except psutil.Error:
            return []

    groups: dict[str, list[psutil.Process]] = {}
    for name, proc in (stack.procs if stack else {}).items():
        groups[name] = tree(psutil.Process(proc.pid))
    # This process and its in-process engine's children, without the stack's processes,
    # which are its children too.
    theirs = {p.pid for procs in groups.values() for p in procs}
    groups["this process"] = [p for p in tree(psutil.Process()) if p.pid not in theirs]
    groups["postgres, redis"] = [
        p for p in psutil.process_iter(["name"]) if p.info["name"] in ("postgres", "redis-server")
    ]
    out = {}
    for name, procs in groups.items():
        total = 0.0
        for p in procs:
            try:
                times = p.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                continue
        out[name] = total
    return out


def settle(stack: Stack, timeout: float = 10.0) -> None:
    """Wait until every process of the stack and of this one is idle again: an engine that
    just finished keeps spinning on its message queue for about a second (vLLM's busy loop),
    and the next run, on the same cores, must not pay for the previous one."""
    deadline = time.monotonic() + timeout
    before = cpu_seconds(stack)
    while time.monotonic() < deadline:
        time.sleep(0.25)
        after = cpu_seconds(stack)
        busy = sum(after.values()) - sum(before.values())
        before = after
        if busy < 0.02:  # under 8% of one core in the window
            return


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: round(after[k] - before.get(k, 0.0), 1) for k in after}


def run_platform(
    stack: Stack, key: str, bodies: list[dict[str, Any]]
) -> tuple[int, float, dict[str, float]]:
    """One batch file through the platform: (output tokens, seconds upload -> output read,
    where the seconds went)."""
    lines = [
        {"custom_id": f"c{i}", "method": "POST", "url": COMPLETIONS, "body": b}
        for i, b in enumerate(bodies)
    ]
    started_wall = time.time()
    batch, results, elapsed = run_batch_file(stack, key, lines)
    if len(results) != len(bodies):
        raise RuntimeError(f"{len(results)} results for {len(bodies)} lines")
    tokens = sum(r["response"]["body"]["usage"]["completion_tokens"] for r in results)
    return tokens, elapsed, phases(stack, batch["id"], started_wall, elapsed)


def run_batch_file(
    stack: Stack, key: str, lines: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]], float]:
    """One batch file of completion lines through the API: (the finished batch, its output
    lines, seconds from the upload until the output was read)."""
    data = "".join(json.dumps(x) + "\n" for x in lines).encode()
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=stack.base_url, headers=headers, timeout=120) as client:
        started = time.perf_counter()
        up = client.post(
            "/files", files={"file": ("b.jsonl", data)}, data={"purpose": "batch"}
        ).json()
        batch = client.post(
            "/batches",
            json={
                "input_file_id": up["id"],
                "endpoint": COMPLETIONS,
                "completion_window": "24h",
            },
        ).json()
        while batch["status"] not in ("completed", "failed", "expired", "cancelled"):
            time.sleep(0.2)
            batch = client.get(f"/batches/{batch['id']}").json()
        if batch["status"] != "completed" or not batch.get("output_file_id"):
            raise RuntimeError(f"batch ended {batch['status']}: {batch.get('errors')}")
        out = client.get(f"/files/{batch['output_file_id']}/content").text
        elapsed = time.perf_counter() - started
    return batch, [json.loads(x) for x in out.splitlines()], elapsed


def phases(stack: Stack, batch_id: str, started: float, elapsed: float) -> dict[str, float]:
    """Seconds from the upload to the batch's milestones, read from its rows."""
    db = Database(stack.settings.database_url, pool_size=1)
    with db.session() as s:
        row = s.execute(
            text(
                "SELECT extract(epoch FROM b.in_progress_at),"
                " extract(epoch FROM min(r.started_at)), extract(epoch FROM max(r.finished_at)),"
                " extract(epoch FROM b.completed_at)"
                " FROM batches b JOIN requests r ON r.batch_id = b.id WHERE b.id = :b"
                " GROUP BY b.id"
            ),
            {"b": batch_id},
        ).one()
    db.dispose()
    marks = ("validated", "first line started", "last line recorded", "batch completed")
    out = {name: float(value) - started for name, value in zip(marks, row, strict=True)}
    out["output read"] = elapsed
    return out


def start_stack(
    var: Path,
    path: Path,
    batch_size: int,
    queues: str,
    feed_factor: int | None = None,
    extra_args: dict[str, Any] | None = None,
) -> tuple[Stack, str, Any]:
    services = Services.start(var)
    # The worker's --batch-size sets max_num_seqs, as in production.
    model_args = {"max_model_len": MAX_MODEL_LEN, **(extra_args or {})}
    models = [{"name": MODEL, "engine": "vllm", "path": str(path), "engine_args": model_args}]
    settings = Settings(
        database_url=services.database_url,
        redis_url=services.redis_url,
        var_dir=str(var),
        models=json.dumps(models),
        port=free_port(),
        flower_port=free_port(),
        web_workers=1,
        log_level="WARNING",
        **({"batch_feed_factor": feed_factor} if feed_factor else {}),
    )
    migrate.upgrade(settings.database_url)
    key, _ = create_key(Database(settings.database_url, pool_size=1), name="bench")
    (var / "logs").mkdir(exist_ok=True)
    stack = Stack(settings, var / "logs")
    try:
        stack.start("web", ["web"])
        stack.start("control", ["control"])
        stack.start(
            "worker",
            ["worker", "--queues", queues, "--model", MODEL, "--concurrency", "32"]
            + ["--batch-size", str(batch_size)],
        )
        stack.wait_api()
        first = queues.split(",")[0]
        wait_worker(stack, f"{first}.{MODEL}", timeout=600)  # loading vLLM takes minutes
    except BaseException:
        stack.stop()
        services.stop()
        raise
    return stack, key, services


def wait_worker(stack: Stack, queue: str, timeout: float) -> None:
    """Wait for the worker to serve ``queue``; a worker that exits (its engine failed to
    start) ends the wait at once, with the end of its log."""
    deadline = time.monotonic() + timeout
    while True:
        if stack.procs["worker"].poll() is not None:
            raise RuntimeError(f"the worker exited while starting:\n{stack.log('worker')[-4000:]}")
        try:
            stack.wait_queue(queue, timeout=5)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=16, help="the engine's max_num_seqs")
    parser.add_argument(
        "--queues",
        default="batch",
        help="queues of the platform's worker: 'batch' (dedicated) or 'realtime,flex,batch' "
        "(the make run default, which caps background work in flight below the batch size)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=3, help="alternating runs of each path")
    parser.add_argument(
        "--feed-factor",
        type=int,
        default=None,
        help="INFERENCE_BATCH_FEED_FACTOR for the platform's worker (default: the setting's)",
    )
    parser.add_argument(
        "--engine-args",
        type=json.loads,
        default={},
        help="JSON object of further engine_args for both engines, such as "
        "'{\"gpu_memory_utilization\": 0.35}' on a GPU",
    )
    args = parser.parse_args()
    if __import__("importlib").util.find_spec("vllm") is None:
        raise SystemExit("vLLM is not installed; `make install` adds its CPU build")

    var = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    os.environ.setdefault("VLLM_CACHE_ROOT", str(var / "vllm-cache"))
    path = build_demo_model(var / "models" / "demo")
    bodies = make_bodies(ModelTokenizer.load(str(path)), args.requests, args.seed)

    # Both engines stay loaded and the runs alternate, so a change in the machine's load
    # between runs does not favour one side.
    stack, key, services = start_stack(
        var, path, args.batch_size, args.queues, args.feed_factor, args.engine_args
    )
    host = EngineHost(
        build_engine("vllm", MODEL, str(path), engine_args(args.batch_size, args.engine_args))
    )
    engine_runs: list[tuple[int, float]] = []
    platform_runs: list[tuple[int, float]] = []
    try:
        host.start()
        for run in range(args.runs):
            settle(stack)
            before = cpu_seconds(stack)
            engine_runs.append(run_engine(host, bodies, run))
            engine_cpu = cpu_delta(before, cpu_seconds(stack))
            settle(stack)
            before = cpu_seconds(stack)
            tokens, seconds, marks = run_platform(stack, key, bodies)
            platform_cpu = cpu_delta(before, cpu_seconds(stack))
            platform_runs.append((tokens, seconds))
            ratio = (tokens / seconds) / (engine_runs[-1][0] / engine_runs[-1][1])
            print(f"run {run + 1}: ratio {ratio:.2f}; platform timeline {marks}", flush=True)
            print(f"  CPU seconds, engine run {engine_cpu}; platform run {platform_cpu}")
    finally:
        try:
            host.stop()
        finally:
            stack.stop()
            services.stop()

    print(
        f"\n{args.requests} completions, prompts 100-200 tokens, outputs 16-256 tokens, "
        f"vLLM max_num_seqs {args.batch_size}, platform worker queues {args.queues}, "
        f"feed factor {args.feed_factor or 'default'}, engine args {args.engine_args or 'none'}; "
        f"median of {args.runs} alternating runs\n"
    )
    # Each run's seconds too: on a machine where the engine shares two cores with the rest,
    # the same work takes the engine alone anywhere from 7 to 12 s, so one median hides much.
    print(f"| {'path':<34} | {'output tokens':>13} | {'seconds':>8} | {'tokens/s':>9} | runs (s)")
    print(f"|{'-' * 36}|{'-' * 15}|{'-' * 10}|{'-' * 11}|{'-' * 10}")
    rates = {}
    for name, runs in (
        ("engine in-process, all at once", engine_runs),
        ("platform: upload -> output read", platform_runs),
    ):
        seconds = statistics.median(s for _, s in runs)
        rates[name] = runs[0][0] / seconds
        each = " ".join(f"{s:.2f}" for _, s in runs)
        print(f"| {name:<34} | {runs[0][0]:13d} | {seconds:8.2f} | {rates[name]:9.1f} | {each}")
    engine_rate, platform_rate = rates.values()
    print("\nplatform timeline of the last run (seconds after the upload began):")
    for name, at in marks.items():
        print(f"  {name:<20} {at:7.2f}")
    print(f"\nplatform/engine throughput ratio: {platform_rate / engine_rate:.2f}")


if __name__ == "__main__":
    main()
