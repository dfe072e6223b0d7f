"""How long a caller of the autobatcher waits beyond its batch's own run.

Starts a real stack (API, control role, one batch worker on a paced simulated model, so lines
finish one after another over a few seconds), then sends N concurrent chat completions
through ``BatchOpenAI`` as one batch, once per poll interval. An observer reads the batch's
output file every 50 ms with the partial-results extension and notes when each line first
shows. For every caller:

* batch run: submit -> its line visible in the partial results (window, upload, validation,
  queueing and generation: the platform's time, not the client's);
* extra wait: its line visible -> its ``await`` returns (the autobatcher's polling, reading and
  parsing: what the client adds);

printed as p50/p95 per poll interval. The observer's 50 ms tick bounds its precision.

    .venv/bin/python benchmarks/autobatcher_latency.py [--requests 200] [--poll-intervals 0.5,1,2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference_platform.autobatcher import BatchOpenAI, Event  # noqa: E402
from inference_platform.db import Database, migrate  # noqa: E402
from inference_platform.keys import create_key  # noqa: E402
from inference_platform.settings import Settings  # noqa: E402
from tests.stack import Services, Stack, free_port  # noqa: E402

MODEL = "sim-paced"
TICK = 0.05


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


@contextlib.contextmanager
def stack(var: Path, tokens_per_second: int) -> Iterator[tuple[str, str]]:
    services = Services.start(var)
    settings = Settings(
        database_url=services.database_url,
        redis_url=services.redis_url,
        var_dir=str(var),
        models=json.dumps(
            [
                {
                    "name": MODEL,
                    "engine": "simulated",
                    "engine_args": {"tokens_per_second": tokens_per_second, "batch_size": 16},
                }
            ]
        ),
        port=free_port(),
        web_workers=1,
        web_threads=32,
        log_level="WARNING",
    )
    migrate.upgrade(settings.database_url)
    key, _ = create_key(Database(settings.database_url, pool_size=1), name="bench")
    (var / "logs").mkdir(exist_ok=True)
    s = Stack(settings, var / "logs")
    try:
        s.start("web", ["web"])
        s.start("control", ["control"])
        s.start(
            "worker",
            ["worker", "--queues", "batch", "--model", MODEL, "--concurrency", "16"]
            + ["--batch-size", "16"],
        )
        s.wait_api()
        s.wait_queue("control")
        yield s.base_url, key
    finally:
        s.stop()
        services.stop()


async def observe(base_url: str, key: str, batch_ids: list[str], seen: dict[str, float]) -> None:
    """Note when each line (by its body's id) first shows in the output file."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10) as http:
        while not batch_ids:
            await asyncio.sleep(TICK)
        output, offset = None, 0
        while True:
            if output is None:
                batch = (await http.get(f"/batches/{batch_ids[0]}")).json()
                output = batch.get("output_file_id")
            if output is not None:
                page = await http.get(f"/files/{output}/content", params={"offset": offset})
                now = time.monotonic()
                for line in page.text.splitlines():
                    seen.setdefault(json.loads(line)["response"]["body"]["id"], now)
                offset = int(page.headers["X-Last-Line"])
            await asyncio.sleep(TICK)


async def one_round(base_url: str, key: str, n: int, poll: float) -> list[tuple[float, float]]:
    batch_ids: list[str] = []
    seen: dict[str, float] = {}

    def on_event(event: Event) -> None:
        if event.kind == "batch_submitted" and event.batch_id:
            batch_ids.append(event.batch_id)

    async def call(client: BatchOpenAI, i: int) -> tuple[float, float, str]:
        start = time.monotonic()
        answer = await client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": f"line {i}"}],
            max_tokens=16,
        )
        return start, time.monotonic(), answer.id

    watcher = asyncio.create_task(observe(base_url, key, batch_ids, seen))
    async with BatchOpenAI(
        api_key=key,
        base_url=base_url,
        batch_size=n,
        batch_window_seconds=0.5,
        poll_interval_seconds=poll,
        on_event=on_event,
    ) as client:
        results = await asyncio.gather(*(call(client, i) for i in range(n)))
    await asyncio.sleep(2 * TICK)
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    rows = []
    for start, end, answer_id in results:
        visible = seen.get(answer_id, end)  # resolved before the observer's next tick: ~0
        rows.append((visible - start, max(0.0, end - visible)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--poll-intervals", default="0.5,1,2")
    parser.add_argument("--tokens-per-second", type=int, default=100)
    args = parser.parse_args()
    polls = [float(x) for x in args.poll_intervals.split(",")]
    var = Path(tempfile.mkdtemp(prefix="bench-autobatcher-"))
    table = []
    with stack(var, args.tokens_per_second) as (base_url, key):
        for poll in polls:
            rows = asyncio.run(one_round(base_url, key, args.requests, poll))
            run_s = [r[0] for r in rows]
            extra = [r[1] for r in rows]
            table.append((poll, run_s, extra))
    print(
        f"\n{args.requests} concurrent chat completions as one batch through BatchOpenAI; "
        f"simulated model at {args.tokens_per_second} tokens/s, 16 tokens each\n"
    )
    print(
        f"| {'poll interval':>13} | {'batch run p50':>13} | {'batch run p95':>13} "
        f"| {'extra wait p50':>14} | {'extra wait p95':>14} |"
    )
    print(f"|{'-' * 15}|{'-' * 15}|{'-' * 15}|{'-' * 16}|{'-' * 16}|")
    for poll, run_s, extra in table:
        print(
            f"| {poll:>11.1f} s | {percentile(run_s, 0.5):>11.2f} s "
            f"| {percentile(run_s, 0.95):>11.2f} s | {percentile(extra, 0.5):>12.2f} s "
            f"| {percentile(extra, 0.95):>12.2f} s |"
        )


if __name__ == "__main__":
    main()
