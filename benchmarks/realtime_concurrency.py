"""Many realtime streams at once: N concurrent chat completions against one API host and one
worker, on the simulated engine (no model: its speed is the engine's, not the machine's).

Starts a real stack (API under `inference-platform web`, one worker taking the realtime queue,
Postgres and Redis), then for each N sends N chat completions at once, each on its own
connection, and reports errors, time to first token and total time (p50 / p95) next to the
ideal (the engine's own TTFT plus tokens / speed), the API's and the worker's peak RSS, and
the CPU seconds the API, the worker, Redis and the client each spent on the burst (on a
2-core machine they share the cores, so the sum bounds how fast a burst can be). `--client`
picks the load generator: raw sockets (the default, a small share of those cores), httpx, or
the async openai SDK (several CPU-seconds per thousand streams). Run from the repository root:

    .venv/bin/python benchmarks/realtime_concurrency.py [--sizes 100,300,1000] [--no-stream]
        [--client socket|sdk|http]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference_platform.db import Database, migrate  # noqa: E402
from inference_platform.keys import create_key  # noqa: E402
from inference_platform.settings import Settings  # noqa: E402
from tests.stack import Services, Stack, free_port  # noqa: E402

MODEL = "sim"
TTFT_MS = 50
TOKENS = 40
BATCH = 1024


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


@dataclass
class Result:
    ttft: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, exc: BaseException) -> None:
        status = getattr(exc, "status_code", None)
        name = f"{status}" if status else type(exc).__name__
        self.errors[name] = self.errors.get(name, 0) + 1


MESSAGES = [{"role": "user", "content": "Tell me about concurrency."}]


def request_body(model: str, tokens: int, stream: bool) -> dict[str, object]:
    """The chat completion every client sends, as JSON fields."""
    return {"model": model, "messages": MESSAGES, "max_tokens": tokens, "stream": stream}


async def one(
    client: openai.AsyncOpenAI,
    stream: bool,
    result: Result,
    model: str = MODEL,
    tokens: int = TOKENS,
) -> None:
    start = time.perf_counter()
    try:
        if stream:
            first = None
            response = await client.chat.completions.create(
                model=model,
                messages=MESSAGES,
                max_tokens=tokens,
                stream=True,  # type: ignore[arg-type]
            )
            async for chunk in response:
                if first is None and chunk.choices and chunk.choices[0].delta.content:
                    first = time.perf_counter()
            end = time.perf_counter()
            result.ttft.append((first or end) - start)
        else:
            await client.chat.completions.create(
                model=model,
                messages=MESSAGES,
                max_tokens=tokens,  # type: ignore[arg-type]
            )
            end = time.perf_counter()
            result.ttft.append(end - start)
        result.total.append(end - start)
    except Exception as exc:  # counted, not raised: the table shows them
        result.error(exc)


async def one_raw(
    http: httpx.AsyncClient,
    stream: bool,
    result: Result,
    model: str = MODEL,
    tokens: int = TOKENS,
) -> None:
    """The same request over plain HTTP, reading the stream without building SDK objects:
    on a 2-core machine the SDK's per-chunk parsing in the client competes with the server."""
    start = time.perf_counter()
    body = request_body(model, tokens, stream)
    try:
        async with http.stream("POST", "/chat/completions", json=body) as r:
            if r.status_code != 200:
                await r.aread()
                raise httpx.HTTPStatusError(str(r.status_code), request=r.request, response=r)
            first = None
            async for line in r.aiter_lines():
                if first is None and '"content":"' in line and '"content":""' not in line:
                    first = time.perf_counter()
            end = time.perf_counter()
        result.ttft.append(((first or end) if stream else end) - start)
        result.total.append(end - start)
    except httpx.HTTPStatusError as exc:
        result.errors[str(exc)] = result.errors.get(str(exc), 0) + 1
    except Exception as exc:  # counted, not raised: the table shows them
        result.error(exc)


async def one_socket(
    base_url: str,
    key: str,
    stream: bool,
    result: Result,
    model: str = MODEL,
    tokens: int = TOKENS,
) -> None:
    """The same request written straight to a socket and its reply read by hand (HTTP/1.1,
    chunked or sized body): a load generator that costs the shared cores tens of
    microseconds per request and event instead of the milliseconds of an HTTP library,
    so that what the table shows is the server's time."""
    url = httpx.URL(base_url)
    body = json.dumps(request_body(model, tokens, stream)).encode()
    head = (
        f"POST {url.path.rstrip('/')}/chat/completions HTTP/1.1\r\nHost: {url.host}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    start = time.perf_counter()
    writer = None
    try:
        reader, writer = await asyncio.open_connection(url.host, url.port)
        writer.write(head + body)
        status = int((await reader.readline()).split()[1])
        length, chunked = None, False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        first, text = None, b""
        if chunked:
            while size := int((await reader.readline()).split(b";")[0], 16):
                text = await reader.readexactly(size + 2)
                if first is None and b'"content":"' in text and b'"content":""' not in text:
                    first = time.perf_counter()
            await reader.readline()
        else:
            text = await reader.readexactly(length or 0)
        end = time.perf_counter()
        if status != 200:
            result.errors[str(status)] = result.errors.get(str(status), 0) + 1
            return
        if b"[DONE]" not in text if stream else b'"content":' not in text:
            raise ValueError("a stream without [DONE]" if stream else "a reply without content")
        result.ttft.append(((first or end) if stream else end) - start)
        result.total.append(end - start)
    except Exception as exc:  # counted, not raised: the table shows them
        result.error(exc)
    finally:
        if writer is not None:
            writer.close()


async def burst(
    base_url: str,
    key: str,
    n: int,
    stream: bool,
    client: str,
    model: str = MODEL,
    tokens: int = TOKENS,
) -> Result:
    """N requests at once, each from its own client (as N users would be): one shared httpx
    pool of N connections costs O(N) per finished response in httpcore, which made the load
    generator, not the server, the slowest part on this machine."""
    result = Result()
    if client == "socket":
        await asyncio.gather(
            *(one_socket(base_url, key, stream, result, model, tokens) for _ in range(n))
        )
        return result
    sdk = client == "sdk"
    headers = {"Authorization": f"Bearer {key}"}
    timeout = httpx.Timeout(120.0)
    # Plain HTTP: no TLS context to build per client (tens of ms of CPU each).
    https = [
        httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout, verify=False)
        for _ in range(n)
    ]
    clients = [
        openai.AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0, http_client=http)
        for http in (https if sdk else ())
    ]
    try:
        if sdk:
            await asyncio.gather(*(one(c, stream, result, model, tokens) for c in clients))
        else:
            await asyncio.gather(*(one_raw(h, stream, result, model, tokens) for h in https))
    finally:
        await asyncio.gather(*(h.aclose() for h in https))
    return result


class PeakRss:
    """Samples the peak resident memory of a process tree while a burst runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                root = psutil.Process(self.pid)
                procs = [root, *root.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                pass

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds(pid: int, children: bool = True) -> float:
    """User + system CPU time of a process (and its children) so far."""
    try:
        root = psutil.Process(pid)
        procs = [root, *(root.children(recursive=True) if children else ())]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def redis_pid(url: str) -> int | None:
    """The Redis server's process, when it runs on this machine."""
    port = httpx.URL(url).port or 6379
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or ())
        if "redis-server" in (proc.info["name"] or "") + cmd and f":{port}" in cmd:
            return proc.pid
    return None


@contextmanager
def platform(
    tokens_per_second: float, web_threads: int | None, concurrency: int = 16
) -> Iterator[tuple[Stack, str]]:
    var = Path(tempfile.mkdtemp(prefix="bench-concurrency-"))
    services = Services.start(var)
    engine_args = {"ttft_ms": TTFT_MS, "tokens_per_second": tokens_per_second, "batch_size": BATCH}
    settings = Settings(
        database_url=services.database_url,
        redis_url=services.redis_url,
        var_dir=str(var),
        models=json.dumps([{"name": MODEL, "engine": "simulated", "engine_args": engine_args}]),
        port=free_port(),
        log_level="WARNING",
        **({"web_threads": web_threads} if web_threads else {}),
    )
    migrate.upgrade(settings.database_url)
    key, _ = create_key(Database(settings.database_url, pool_size=1), name="bench")
    (var / "logs").mkdir()
    stack = Stack(settings, var / "logs")
    try:
        stack.start("web", ["web"])
        stack.start(
            "worker",
            ["worker", "--queues", "realtime", "--model", MODEL, "--concurrency", str(concurrency)],
        )
        stack.wait_api()
        stack.wait_queue(f"realtime.{MODEL}")
        yield stack, key
    finally:
        stack.stop()
        services.stop()


def row(
    n: int,
    tps: float,
    stream: bool,
    result: Result,
    api_rss: int,
    worker_rss: int,
    cpu: dict[str, float],
) -> str:
    ideal = TTFT_MS / 1000 + TOKENS / tps
    errors = sum(result.errors.values())
    kinds = ", ".join(f"{k}: {v}" for k, v in sorted(result.errors.items()))
    return (
        f"| {n:>5} | {'stream' if stream else 'whole':>6} | {tps:>4g} | "
        f"{errors:>4}{f' ({kinds})' if kinds else '':<0} | "
        f"{percentile(result.ttft, 0.5):5.2f} / {percentile(result.ttft, 0.95):5.2f} s | "
        f"{percentile(result.total, 0.5):5.2f} / {percentile(result.total, 0.95):5.2f} s | "
        f"{ideal:4.2f} s | {api_rss / 2**20:5.0f} / {worker_rss / 2**20:5.0f} MiB | "
        + " / ".join(f"{cpu[k]:4.1f}" for k in ("api", "worker", "redis", "client"))
        + " s |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,300,1000")
    parser.add_argument("--no-stream", action="store_true", help="also run non-streaming")
    parser.add_argument("--web-threads", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=16, help="the worker's task threads")
    parser.add_argument(
        "--client",
        choices=("sdk", "http", "socket"),
        default="socket",
        help="the async openai SDK, httpx reading lines, or requests written to sockets by "
        "hand (the lightest: the client's CPU shares the cores with the server)",
    )
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    modes = [True, False] if args.no_stream else [True]
    lines = []
    # The goal figures: 20 tokens/s up to 300 streams, 10 tokens/s at 1,000 (ideal 4 s).
    for tps in sorted({20.0 if n < 1000 else 10.0 for n in sizes}, reverse=True):
        with platform(tps, args.web_threads, args.concurrency) as (stack, key):
            for n in [n for n in sizes if (20.0 if n < 1000 else 10.0) == tps]:
                for stream in modes:
                    pids = {
                        "api": stack.procs["web"].pid,
                        "worker": stack.procs["worker"].pid,
                        "redis": redis_pid(stack.settings.redis_url) or 0,
                        "client": os.getpid(),
                    }
                    # The client's own process only: the stack runs as its children.
                    before = {k: cpu_seconds(pid, k != "client") for k, pid in pids.items()}
                    api = PeakRss(pids["api"])
                    worker = PeakRss(pids["worker"])
                    with api, worker:
                        result = asyncio.run(burst(stack.base_url, key, n, stream, args.client))
                    cpu = {
                        k: cpu_seconds(pid, k != "client") - before[k] for k, pid in pids.items()
                    }
                    lines.append(row(n, tps, stream, result, api.peak, worker.peak, cpu))
                    print(lines[-1], flush=True)
    print(
        f"\nsimulated engine: TTFT {TTFT_MS} ms, {TOKENS} tokens per answer, engine batch "
        f"{BATCH}; one API host, one worker; client: {args.client}\n"
    )
    print(
        "|     N |   mode |  tok/s | errors | TTFT p50 / p95 | total p50 / p95 | ideal | "
        "RSS API / worker | CPU API / worker / Redis / client |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
