"""Batch ingest at full size: a generated 50,000-line (~50 MB) chat file through the platform.

Starts a real stack (API, control role, one worker with the ``simulated`` engine serving only the
batch queue, Postgres and Redis) and measures, with the official openai SDK:

* upload time of the file (streamed into Postgres chunks);
* validation + enqueue time (batch created -> ``in_progress``: every line parsed, checked
  against the chat schema and inserted as a request row);
* end-to-end lines per second with the instant simulated engine (create -> ``completed``);
* peak memory (VmHWM) of the API and control worker processes, after a small warm-up
  upload and after the big one, to show that memory does not grow with the file size.

Run from the repository root:

    .venv/bin/python benchmarks/batch_ingest.py [--lines 50000] [--line-bytes 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import openai
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference_platform.db import Database, migrate  # noqa: E402
from inference_platform.keys import create_key  # noqa: E402
from inference_platform.settings import Settings  # noqa: E402
from tests.stack import Services, Stack, free_port  # noqa: E402

MODEL = "sim"


def peak_mib(pid: int) -> float:
    """Largest VmHWM (peak resident memory) in a process tree, in MiB."""
    peak = 0
    procs = [psutil.Process(pid)]
    procs += procs[0].children(recursive=True)
    for proc in procs:
        try:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except (OSError, psutil.Error):
            continue
    return peak / 1024


def write_file(path: Path, lines: int, line_bytes: int, max_tokens: int) -> int:
    """A chat batch file whose lines are about ``line_bytes`` long."""
    filler = "lorem ipsum dolor sit amet " * (line_bytes // 27 + 1)
    with path.open("w") as out:
        for i in range(lines):
            item = {
                "custom_id": f"line-{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": MODEL,
                    "max_tokens": max_tokens,
                    "messages": [
                        {"role": "system", "content": "You summarise text in one sentence."},
                        {"role": "user", "content": ""},
                    ],
                },
            }
            room = line_bytes - len(json.dumps(item)) - len(str(i))
            item["body"]["messages"][1]["content"] = f"{i} " + filler[: max(0, room)]
            out.write(json.dumps(item) + "\n")
    return path.stat().st_size


def wait(
    client: openai.OpenAI, batch_id: str, statuses: tuple[str, ...], timeout: float
) -> openai.types.Batch:
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in statuses:
            return batch
        if time.monotonic() > deadline:
            raise TimeoutError(f"batch still {batch.status}: {batch.request_counts}")
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=50000)
    parser.add_argument("--line-bytes", type=int, default=1000)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument(
        "--batch-size", type=int, default=256, help="the worker's --batch-size (lines per chunk)"
    )
    args = parser.parse_args()

    var = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    source = var / "batch.jsonl"
    size = write_file(source, args.lines, args.line_bytes, args.max_tokens)
    small = var / "small.jsonl"
    write_file(small, 1000, args.line_bytes, args.max_tokens)

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
    rows: list[tuple[str, str]] = []
    try:
        stack.start("web", ["web"])
        stack.start("control", ["control"])
        stack.start(
            "worker",
            [
                "worker",
                "--queues",
                "batch",
                "--model",
                MODEL,
                "--concurrency",
                "8",
                "--batch-size",
                str(args.batch_size),
            ],
        )
        stack.wait_api()
        stack.wait_queue(f"batch.{MODEL}")
        stack.wait_queue("control")
        client = openai.OpenAI(base_url=stack.base_url, api_key=key, timeout=600)
        web, control = stack.procs["web"].pid, stack.procs["control"].pid

        # Warm-up: a 1,000-line batch, so the memory baseline includes a full cycle.
        warm = client.files.create(file=small.open("rb"), purpose="batch")
        warm_batch = client.batches.create(
            input_file_id=warm.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        wait(client, warm_batch.id, ("completed", "failed"), 300)
        base_web, base_control = peak_mib(web), peak_mib(control)

        start = time.perf_counter()
        with source.open("rb") as fh:
            uploaded = client.files.create(file=fh, purpose="batch")
        upload_s = time.perf_counter() - start
        after_upload_web = peak_mib(web)

        start = time.perf_counter()
        batch = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        running = wait(client, batch.id, ("in_progress", "completed", "failed"), 600)
        validate_s = time.perf_counter() - start
        if running.status == "failed":
            raise SystemExit(f"validation failed: {running.errors}")
        done = wait(client, batch.id, ("completed", "failed", "expired"), 3600)
        total_s = time.perf_counter() - start
        run_s = total_s - validate_s

        start = time.perf_counter()
        downloaded = len(client.files.content(done.output_file_id).read())
        download_s = time.perf_counter() - start

        rows = [
            ("input file", f"{args.lines:,} lines, {size / 1e6:.1f} MB"),
            ("upload (files.create)", f"{upload_s:.2f} s ({size / 1e6 / upload_s:.0f} MB/s)"),
            ("validation + enqueue", f"{validate_s:.2f} s"),
            ("upload + validation", f"{upload_s + validate_s:.2f} s"),
            (
                "run (in_progress -> completed)",
                f"{run_s:.1f} s ({args.lines / run_s:,.0f} lines/s)",
            ),
            (
                "end to end (create -> completed)",
                f"{total_s:.1f} s ({args.lines / total_s:,.0f} lines/s)",
            ),
            (
                "lines completed",
                f"{done.request_counts.completed:,} of {done.request_counts.total:,}",
            ),
            ("output download", f"{downloaded / 1e6:.1f} MB in {download_s:.2f} s"),
            (
                "API peak RSS",
                f"{base_web:.0f} MiB after 1k-line warm-up, "
                f"{after_upload_web:.0f} MiB after the upload, "
                f"{peak_mib(web):.0f} MiB at the end",
            ),
            (
                "control peak RSS",
                f"{base_control:.0f} MiB after warm-up, {peak_mib(control):.0f} MiB at the end",
            ),
        ]
    finally:
        stack.stop()
        services.stop()

    print(f"\nbatch ingest, simulated engine (instant), worker --batch-size {args.batch_size}\n")
    width = max(len(name) for name, _ in rows)
    print(f"| {'measure':<{width}} | result |")
    print(f"|{'-' * (width + 2)}|--------|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")


if __name__ == "__main__":
    main()
