"""Process commands: ``up`` (everything), and the single roles the Procfile starts."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from inference_platform import embedded
from inference_platform.catalog import DEMO_MODEL, TIERS, demo_model_path, load_catalog
from inference_platform.settings import Settings

DEFAULT_FORMATION = "web=1,realtime=1,flex=1,batch=1,control=1,flower=1"


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
    return settings


def _formation(text: str) -> dict[str, int]:
    out = {}
    for item in text.split(","):
        name, _, count = item.partition("=")
        out[name.strip()] = int(count or 1)
    return out


@click.command()
@click.option(
    "-c",
    "--concurrency",
    "formation",
    default=DEFAULT_FORMATION,
    show_default=True,
    help="Processes per Procfile role, as honcho takes it.",
)
@click.option(
    "--procfile",
    type=click.Path(exists=True, path_type=Path),
    default="Procfile",
    show_default=True,
)
def up(formation: str, procfile: Path) -> None:
    """Start the whole platform (embedded Postgres and Redis when no URLs are set)."""
    from honcho.environ import expand_processes, parse_procfile
    from honcho.manager import Manager

    from inference_platform.db import Database
    from inference_platform.keys import create_key

    settings = prepare(Settings.from_env())
    key, _ = create_key(Database(settings.database_url, pool_size=1), name="make run")
    env = {**os.environ, **settings.to_env()}
    # Children find the same console script and Python as this process.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    base = f"http://{settings.host}:{settings.port}/v1"
    click.echo(
        "\n"
        f"  OpenAI base URL : {base}\n"
        f"  API key         : {key}\n"
        f"  Flower          : http://{settings.host}:{settings.flower_port}\n"
        f"  Models          : {', '.join(load_catalog(settings).names())}\n\n"
        f"  OPENAI_BASE_URL={base} OPENAI_API_KEY={key} python your_script.py\n"
    )
    procs = parse_procfile(procfile.read_text()).processes
    manager = Manager()
    for p in expand_processes(procs, concurrency=_formation(formation), env=env):
        manager.add_process(p.name, p.cmd, env=p.env)
    try:
        manager.loop()
    finally:
        embedded.stop(settings)
    sys.exit(manager.returncode)


@click.command()
def web() -> None:
    """The API under gunicorn (threads, so open streams do not block other requests)."""
    s = _settings()
    args = [
        "gunicorn",
        "--worker-class",
        "gthread",
        "--workers",
        str(s.web_workers),
        "--threads",
        str(s.web_threads),
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
        "api:create_app()",
    ]
    os.environ.update(s.to_env())
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
