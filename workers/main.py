"""Start a worker process: build the engine once, then consume Celery queues.

GPU roles use Celery's threads pool with the engine in this process (prefork and CUDA do not
mix, and prefork children may not start vLLM's engine core). The ``control`` role hosts no
engine and also runs beat (the sweeper and the batch dispatcher).
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import threading

from celery import Celery

from inference_platform.catalog import TIERS
from inference_platform.celery_app import CONTROL_QUEUE, queue_name
from inference_platform.engines import build_engine
from inference_platform.engines.host import EngineHost
from inference_platform.platform import Platform
from inference_platform.settings import Settings
from workers import runtime

log = logging.getLogger(__name__)

TASK_MODULES = ("workers.tasks.realtime", "workers.tasks.flex", "workers.tasks.batch")
CONTROL_MODULES = ("workers.tasks.control",)


def _import_tasks(modules: tuple[str, ...]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


def _celery(platform: Platform) -> Celery:
    app = platform.celery
    app.set_current()
    app.set_default()
    return app


def run_worker(
    settings: Settings,
    *,
    tiers: list[str],
    model: str,
    concurrency: int,
    batch_size: int,
    background_slots: int | None = None,
    loglevel: str = "INFO",
) -> None:
    """Host ``model``'s engine and serve ``tiers`` (e.g. ``["realtime"]``) for it."""
    unknown = set(tiers) - set(TIERS)
    if unknown:
        raise SystemExit(f"unknown queue roles {sorted(unknown)}; choose from {TIERS}")
    platform = Platform(settings)
    spec = platform.model(model)
    engine_args = {"batch_size": batch_size, **spec.engine_args}
    engine = build_engine(spec.engine, spec.name, spec.path, engine_args)
    # Sharing one engine across tiers: cap flex/batch generations so realtime has room.
    if background_slots is None and "realtime" in tiers and len(tiers) > 1:
        background_slots = max(1, batch_size * 3 // 4)
    host = EngineHost(engine, background_slots=background_slots)
    log.info("loading %s engine for %s", spec.engine, spec.name)
    host.start()
    queues = [queue_name(t, spec.name) for t in tiers if spec.serves(t)]
    name = f"{'+'.join(tiers)}-{spec.name}-{os.getpid()}@{socket.gethostname()}"
    rt = runtime.Runtime(platform, spec.name, host, queues, name, batch_size=batch_size)
    if background_slots is not None and "realtime" in tiers:
        # Celery hands any queue's message to any free thread; without this, waiting flex
        # tasks could hold every thread and realtime requests would queue behind them.
        rt.background_tasks = threading.BoundedSemaphore(background_slots)
    runtime.install(rt)
    _import_tasks(TASK_MODULES)
    app = _celery(platform)
    rt.start_background()
    try:
        app.worker_main(
            [
                "worker",
                "--pool=threads",
                f"--concurrency={concurrency}",
                f"--queues={','.join(queues)}",
                f"--hostname={name}",
                f"--loglevel={loglevel}",
                "--without-mingle",
                "--without-gossip",
                *(["--task-events"] if settings.task_events else []),
            ]
        )
    finally:
        rt.stopping.set()
        host.stop()


def run_control(settings: Settings, *, beat: bool = True, loglevel: str = "INFO") -> None:
    """The CPU-only housekeeping worker (validation, finalisation, sweeper) plus beat."""
    platform = Platform(settings)
    name = f"control-{os.getpid()}@{socket.gethostname()}"
    rt = runtime.Runtime(platform, None, None, [CONTROL_QUEUE], name)
    runtime.install(rt)
    _import_tasks(CONTROL_MODULES)
    app = _celery(platform)
    rt.start_background()
    argv = [
        "worker",
        "--pool=threads",
        "--concurrency=4",
        f"--queues={CONTROL_QUEUE}",
        f"--hostname={name}",
        f"--loglevel={loglevel}",
        "--without-mingle",
        "--without-gossip",
        *(["--task-events"] if settings.task_events else []),
    ]
    if beat:
        schedule = settings.var_path / f"celerybeat-schedule-{os.getpid()}"
        argv += ["--beat", f"--schedule={schedule}"]
    try:
        app.worker_main(argv)
    finally:
        rt.stopping.set()
