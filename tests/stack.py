"""Start and stop the real platform processes for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from inference_platform import embedded
from inference_platform.settings import Settings
from tests.helpers import eventually

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _claim_redis_db(admin_url: str) -> int:
    client = redis.Redis.from_url(admin_url)
    for index in range(1, 16):
        if client.set(f"ip-test-claim:{index}", 1, nx=True, ex=3 * 3600):
            return index
    raise RuntimeError("all Redis test databases are claimed; are 15 test runs going on?")


def _release_redis_db(admin_url: str, index: int) -> None:
    redis.Redis.from_url(f"{admin_url.rsplit('/', 1)[0]}/{index}").flushdb()
    redis.Redis.from_url(admin_url).delete(f"ip-test-claim:{index}")


@dataclass
class Services:
    """A fresh database and Redis db for one test session; local servers if present."""

    database_url: str
    redis_url: str
    cleanup: list[Callable[[], None]] = field(default_factory=list)

    @classmethod
    def start(cls, var_dir: Path) -> Services:
        cleanup: list[Callable[[], None]] = []
        # TEST_EMBEDDED=1 runs against the embedded servers even where local ones exist.
        local = os.environ.get("TEST_EMBEDDED") != "1"
        if local and _reachable("127.0.0.1", 5432):
            admin_url = os.environ.get(
                "TEST_ADMIN_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
            )
        else:
            admin_url = embedded.start_postgres(var_dir / "postgres")
            cleanup.append(lambda: embedded.stop_postgres(var_dir / "postgres"))
        name = f"ip_test_{uuid.uuid4().hex[:10]}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))

        def drop() -> None:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

        cleanup.insert(0, drop)
        database_url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        if local and _reachable("127.0.0.1", 6379):
            # A db index of its own (claimed in db 0) so concurrent test runs and a
            # developer's Redis data never meet.
            index = _claim_redis_db("redis://127.0.0.1:6379/0")
            redis_url = f"redis://127.0.0.1:6379/{index}"
            cleanup.append(lambda: _release_redis_db("redis://127.0.0.1:6379/0", index))
        else:
            redis_url = embedded.start_redis(var_dir / "redis")
            cleanup.append(lambda: embedded.stop_redis(var_dir / "redis"))
        redis.Redis.from_url(redis_url).flushdb()
        return cls(database_url, redis_url, cleanup)

    def stop(self) -> None:
        for fn in self.cleanup:
            try:
                fn()
            except Exception as exc:  # keep cleaning up the rest
                print(f"cleanup failed: {exc}", file=sys.stderr)


class Stack:
    """Named platform processes started from the CLI, with their logs under ``log_dir``."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.commands: dict[str, list[str]] = {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}/v1"

    def env(self) -> dict[str, str]:
        env = {**os.environ, **self.settings.to_env(), "PYTHONUNBUFFERED": "1"}
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        return env

    def start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        self.commands[name] = args
        # The child writes to its own copy of the descriptor; ours can close at once.
        with open(self.log_dir / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                [*CLI, *args],
                env=self.env(),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[name] = proc
        return proc

    def restart(self, name: str) -> subprocess.Popen[bytes]:
        return self.start(name, self.commands[name])

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def stop(self) -> None:
        for name in list(self.procs):
            proc = self.procs[name]
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for name in list(self.procs):
            proc = self.procs.pop(name)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- readiness ------------------------------------------------------------------------
    def wait_api(self, timeout: float = 60) -> None:
        url = f"http://127.0.0.1:{self.settings.port}/health"
        eventually(
            lambda: httpx.get(url, timeout=2).status_code == 200,
            timeout=timeout,
            ignoring=(httpx.HTTPError,),
            what="the API",
        )

    def wait_queue(self, queue: str, timeout: float = 120) -> None:
        client = redis.Redis.from_url(self.settings.redis_url)
        max_age = self.settings.worker_heartbeat_seconds * 3

        def live() -> bool:
            return int(client.zcount(f"live:{queue}", time.time() - max_age, "+inf")) > 0

        eventually(live, timeout=timeout, ignoring=(redis.RedisError,), what=f"a worker on {queue}")
