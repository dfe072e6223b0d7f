"""Process commands: ``up`` (everything), and the single roles the Procfile starts."""

from __future__ import annotations

import logging
import os
import secrets
import shlex
import sys
import threading
import time
from pathlib import Path

import click

from inference_platform import embedded
from inference_platform.catalog import (
    DEMO_EMBED_MODEL,
    DEMO_MODEL,
    TIERS,
    Catalog,
    demo_embed_path,
    demo_model_path,
    load_catalog,
)
from inference_platform.metrics import multiproc
from inference_platform.settings import Settings

# One engine worker per catalog model taking all three tiers (what one GPU runs), plus the API,
# the control worker and Flower. The per-tier roles are for scaling out: -c realtime=1,batch=2.
DEFAULT_FORMATION = "web=1,engine=1,control=1,flower=1"
# Procfile roles that host an engine: ``up`` starts them once per catalog model (--model NAME).
ENGINE_ROLES = ("engine", "realtime", "flex", "batch")
# How long `up` waits after Ctrl-C for its processes to stop before it kills them.
STOP_WAIT_SECONDS = 20


def _settings() -> Settings:
    from inference_platform.embedded import load_settings

    return load_settings()


def prepare(settings: Settings) -> Settings:
    """Services, schema and the demo model: everything the processes need before starting."""
    from inference_platform.db import migrate

    settings = embedded.ensure(settings)
    migrate.upgrade(settings.database_url)
    catalog = load_catalog(settings)
    demo = catalog.get(DEMO_MODEL)
    if demo is not None and demo.path == str(demo_model_path(settings)):
        from inference_platform.demo_model import build_demo_model

        build_demo_model(demo.path)
    embed = catalog.get(DEMO_EMBED_MODEL)
    if embed is not None and embed.path == str(demo_embed_path(settings)):
        from inference_platform.demo_model import build_demo_embedding_model

        build_demo_embedding_model(embed.path)
    return settings


def _formation(text: str) -> dict[str, int]:
    out = {}
    for item in text.split(","):
        name, _, count = item.partition("=")
        if name.strip():
            out[name.strip()] = int(count or 1)
    return out


def _role_tiers(role: str) -> tuple[str, ...]:
    return TIERS if role == "engine" else (role,)


def plan_processes(
    procfile: dict[str, str], formation: dict[str, int], catalog: Catalog
) -> list[tuple[str, str]]:
    """(name, command) of every process to start: engine roles once per model that offers one
    of the role's tiers, other roles as they are. Roles missing from ``formation`` start none."""
    unknown = set(formation) - set(procfile)
    if unknown:
        raise click.BadParameter(f"no such Procfile roles: {', '.join(sorted(unknown))}")
    out = []
    for role, cmd in procfile.items():
        count = formation.get(role, 0)
        if role not in ENGINE_ROLES:
            out += [(f"{role}.{i}", cmd) for i in range(1, count + 1)]
            continue
        for spec in catalog:
            if any(spec.serves(t) for t in _role_tiers(role)):
                model_cmd = f"{cmd} --model {shlex.quote(spec.name)}"
                out += [(f"{role}.{spec.name}.{i}", model_cmd) for i in range(1, count + 1)]
    return out


def describe_models(catalog: Catalog) -> str:
    """One banner line per model: its engine and the library version behind it."""
    from inference_platform.engines import engine_version

    return "\n".join(
        f"    {spec.name:<16} {spec.engine} engine ({engine_version(spec.engine)})"
        for spec in catalog
    )


def _engine_queues(plan: list[tuple[str, str]], catalog: Catalog) -> list[str]:
    """The realtime (else first) queue of every model an engine process serves."""
    from inference_platform.celery_app import queue_name

    queues = []
    for spec in catalog:
        if any(f"--model {shlex.quote(spec.name)}" in cmd for _, cmd in plan):
            tier = "realtime" if spec.serves("realtime") else spec.tiers[0]
            queues.append(queue_name(tier, spec.name))
    return queues


def _announce_when_ready(
    settings: Settings, queues: list[str], banner: str, ready_url: str | None
) -> None:
    """Print ``banner`` once every engine worker is up (vLLM takes a while to start) and the
    API says it is ready (``ready_url``, when the formation starts the API and every tier),
    so the first request after the banner is served."""
    import httpx
    import redis

    from inference_platform import liveness

    client = redis.Redis.from_url(settings.redis_url)
    max_age = settings.worker_heartbeat_seconds * 3
    started = time.monotonic()

    def ready() -> bool:
        try:
            if liveness.missing_queues(client, queues, max_age):
                return False
            return ready_url is None or httpx.get(ready_url, timeout=2).status_code == 200
        except (redis.RedisError, httpx.HTTPError):
            return False

    while not ready():
        time.sleep(1)
    click.echo(
        f"{banner}\n  Ready: every engine worker is up ({time.monotonic() - started:.0f} s)\n"
    )


def _ready_url(settings: Settings, plan: list[tuple[str, str]]) -> str | None:
    """The API's readiness route when the formation starts the API and the all-tier engine
    role (a partial formation is never ``ready``: only its own queues are awaited)."""
    roles = {name.split(".")[0] for name, _ in plan}
    if {"web", "engine"} <= roles:
        return f"http://{settings.host}:{settings.port}/ready"
    return None


@click.command()
@click.option(
    "-c",
    "--concurrency",
    "formation",
    default=DEFAULT_FORMATION,
    show_default=True,
    help="Processes per Procfile role; engine roles start that many per catalog model.",
)
@click.option(
    "--procfile",
    type=click.Path(exists=True, path_type=Path),
    default="Procfile",
    show_default=True,
)
def up(formation: str, procfile: Path) -> None:
    """Start the whole platform (embedded Postgres and Redis when no URLs are set)."""
    from honcho import manager as honcho_manager
    from honcho.environ import parse_procfile
    from honcho.manager import Manager

    from inference_platform.db import Database
    from inference_platform.keys import ADMIN, create_key

    settings = prepare(Settings.from_env())
    # `up` is the local setup: a webhook receiver on 127.0.0.1 works out of the box.
    if "INFERENCE_WEBHOOK_ALLOW_INSECURE" not in os.environ:
        settings = settings.replace(webhook_allow_insecure=True)
    # The person at the terminal is the operator: a fresh operator token for the console.
    if not settings.console_operator_token:
        settings = settings.replace(console_operator_token=secrets.token_urlsafe(24))
    catalog = load_catalog(settings)
    plan = plan_processes(
        parse_procfile(procfile.read_text()).processes, _formation(formation), catalog
    )
    # The person at the terminal is the operator: an admin key (usage, costs, webhooks).
    key, _ = create_key(Database(settings.database_url, pool_size=1), name="make run", role=ADMIN)
    env = {**os.environ, **settings.to_env()}
    # Children find the same console script and Python as this process.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    base = f"http://{settings.host}:{settings.port}/v1"
    banner = (
        "\n"
        f"  OpenAI base URL : {base}\n"
        f"  API key         : {key} (admin; `make key` makes member keys)\n"
        f"  Web console     : http://{settings.host}:{settings.port}/console/ (sign in with "
        "the key above)\n"
        f"  Operator view   : http://{settings.host}:{settings.port}/console/operator/ "
        f"(operator token {settings.console_operator_token})\n"
        f"  Flower          : http://{settings.host}:{settings.flower_port}\n"
        f"  Models          :\n{describe_models(catalog)}\n\n"
        f"  OPENAI_BASE_URL={base} OPENAI_API_KEY={key} python your_script.py\n"
    )
    # The key and URL come only once the platform can serve them (see _announce_when_ready).
    click.echo("\n  Starting; engines load their models first (vLLM: tens of seconds)\n")
    # honcho SIGKILLs what has not stopped 5 s after Ctrl-C; an engine worker needs longer to
    # hand its running work back and stop its engine (vLLM's CPU engine alone takes ~5 s), and
    # killed, its work waits for its leases to lapse. honcho offers no setting for it.
    honcho_manager.KILL_WAIT = STOP_WAIT_SECONDS
    manager = Manager()
    for name, cmd in plan:
        manager.add_process(name, cmd, env={**env, "HONCHO_PROCESS_NAME": name})
    threading.Thread(
        target=_announce_when_ready,
        args=(settings, _engine_queues(plan, catalog), banner, _ready_url(settings, plan)),
        name="announce",
        daemon=True,
    ).start()
    try:
        manager.loop()
    finally:
        embedded.stop(settings)
    sys.exit(manager.returncode)


@click.command()
def web() -> None:
    """The API under gunicorn (greenlets or threads, so open streams do not block others; the
    worker class is chosen in api/gunicorn_conf.py from ``INFERENCE_WEB_WORKER_CLASS``)."""
    s = _settings()
    if s.web_worker_class == "gevent":
        concurrency = ["--worker-connections", str(s.web_connections)]
    else:
        concurrency = ["--threads", str(s.web_threads)]
    args = [
        "gunicorn",
        *concurrency,
        "--workers",
        str(s.web_workers),
        "--bind",
        f"{s.host}:{s.port}",
        "--timeout",
        "120",
        "--graceful-timeout",
        "10",
        "--keep-alive",
        "75",
        "--access-logfile",
        "-",
        "--config",
        str(Path(__file__).resolve().parent.parent / "api" / "gunicorn_conf.py"),
        "api:create_app()",
    ]
    os.environ.update(s.to_env())
    # Before gunicorn imports prometheus_client: its processes share figures through files.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = multiproc.fresh_dir(s)
    os.execvp(args[0], args)


@click.command()
@click.option(
    "--queues",
    default="realtime",
    show_default=True,
    help="Comma-separated roles this engine serves: realtime, flex, batch.",
)
@click.option("--model", default=None, help="Catalog model to host (default: the first).")
@click.option(
    "--concurrency",
    default=16,
    show_default=True,
    help="Tasks run at once (threads); each holds one request or batch chunk.",
)
@click.option(
    "--batch-size",
    default=8,
    show_default=True,
    help="Sequences the engine batches together; also batch-chunk lines.",
)
@click.option(
    "--background-slots",
    default=None,
    type=int,
    help="With realtime among several roles: most flex/batch sequences in flight.",
)
def worker(
    queues: str, model: str | None, concurrency: int, batch_size: int, background_slots: int | None
) -> None:
    """A GPU worker hosting one engine for one model."""
    from workers.main import run_worker

    s = _settings()
    # Celery sets up logging only once the engine is up; the engine's start-up (tens of
    # seconds for vLLM) is logged too.
    logging.basicConfig(
        level=s.log_level, format="[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"
    )
    tiers = [q.strip() for q in queues.split(",") if q.strip()]
    bad = [t for t in tiers if t not in TIERS]
    if bad:
        raise click.BadParameter(f"unknown roles {bad}; choose from {', '.join(TIERS)}")
    run_worker(
        s,
        tiers=tiers,
        model=model or load_catalog(s).names()[0],
        concurrency=concurrency,
        batch_size=batch_size,
        background_slots=background_slots,
        loglevel=s.log_level,
    )


@click.command()
@click.option(
    "--beat/--no-beat",
    default=True,
    show_default=True,
    help="Also run the periodic scheduler (run it in one control process only).",
)
def control(beat: bool) -> None:
    """The CPU-only housekeeping worker."""
    from workers.main import run_control

    s = _settings()
    run_control(s, beat=beat, loglevel=s.log_level)


@click.command()
def flower() -> None:
    """Flower, watching the workers and queues."""
    s = _settings()
    os.environ.update(s.to_env())
    # Flower listens on INFERENCE_HOST (loopback by default); its JSON API is for the operator.
    os.environ.setdefault("FLOWER_UNAUTHENTICATED_API", "true")
    args = [
        "celery",
        "-A",
        "inference_platform.make_celery:celery_app",
        "flower",
        f"--port={s.flower_port}",
        f"--address={s.host}",
    ]
    os.execvp(args[0], args)


def register(group: click.Group) -> None:
    for command in (up, web, worker, control, flower):
        group.add_command(command)
