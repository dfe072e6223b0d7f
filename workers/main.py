"""Start a worker process: build the engine once, then consume Celery queues.

GPU roles use Celery's threads pool with the engine in this process (prefork and CUDA do not
mix, and prefork children may not start vLLM's engine core). The ``control`` role hosts no
engine and also runs beat (the sweeper and the batch dispatcher).
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any

from celery import Celery
from celery.signals import after_setup_logger, worker_shutting_down

from inference_platform import liveness
from inference_platform.catalog import EMBED, TIERS
from inference_platform.celery_app import CONTROL_QUEUE, queue_name
from inference_platform.engines import build_engine, engine_version
from inference_platform.engines.host import EngineHost
from inference_platform.engines.niceness import yield_cpu
from inference_platform.metrics.serve import serve_control, serve_worker
from inference_platform.platform import Platform
from inference_platform.settings import Settings
from workers import runtime
from workers.tasks import control, realtime, work

log = logging.getLogger(__name__)

# Importing the task modules registers their tasks; the roles consume different queues.
TASK_MODULES = (realtime, work, control)


def _celery(platform: Platform) -> Celery:
    app = platform.celery
    app.set_current()
    app.set_default()
    # Our consumer reconnects every second and can be told to start over (the watchdog);
    # it keeps trying for as long as the broker is away: a worker is of no use without it,
    # and one that gave up would need a person to start it again.
    app.conf.worker_consumer = "workers.consumer:Consumer"
    app.conf.broker_connection_max_retries = None
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
    # First: every thread and engine process started from here on inherits it. Only where
    # realtime requests are served: a batch-only engine on a 2-core host lost a fifth of its
    # throughput to the platform's processes preempting it (benchmarks/batch_throughput.py).
    if "realtime" in tiers:
        yield_cpu(settings.engine_nice)
    platform = Platform(settings)
    spec = platform.model(model)
    served = [t for t in tiers if spec.serves(t)]
    queues = [queue_name(t, spec.name) for t in served]
    name = f"{'+'.join(tiers)}-{spec.name}-{os.getpid()}@{socket.gethostname()}"
    _say_starting(platform, queues, name)
    engine_args = {"batch_size": batch_size, **spec.engine_args}
    if spec.task == EMBED:
        engine_args["task"] = EMBED  # the engine loads the model as an embedding model
    # The catalog may size the engine's batch itself; the feeds follow the engine.
    batch_size = int(engine_args["batch_size"])
    engine = build_engine(
        spec.engine, spec.name, spec.path, engine_args, tool_parser=spec.tool_parser
    )
    # Sharing one engine across tiers: cap flex/batch generations so realtime has room.
    if background_slots is None and "realtime" in tiers and len(tiers) > 1:
        background_slots = max(1, batch_size * 3 // 4)
    host = EngineHost(engine, background_slots=background_slots)
    log.info("loading %s engine for %s", spec.engine, spec.name)
    host.start()
    # Durable work each feed keeps in flight: batch lines up to INFERENCE_BATCH_FEED_FACTOR
    # times the batch size, so the engine's own queue holds the next lines and schedules them
    # as it does for LLM.generate (a finished line's slot is refilled at the next step, and
    # prefills batch together), not after a round trip to Postgres; flex up to the background
    # share when realtime shares the engine; background responses in the realtime tier up to
    # the batch size.
    capacities = {t: batch_size for t in served}
    if "batch" in capacities:
        capacities["batch"] = settings.batch_feed_factor * batch_size
    if "flex" in capacities and background_slots is not None:
        capacities["flex"] = background_slots
    rt = runtime.Runtime(
        platform,
        spec.name,
        host,
        queues,
        name,
        capacities=capacities,
        engine_slots=background_slots or batch_size,
    )
    runtime.install(rt)
    worker_shutting_down.connect(lambda **_: rt.stop(), weak=False)
    app = _celery(platform)
    rt.start_background()
    serve_worker(
        settings,
        feeds=lambda: rt.feeds,
        engine=spec.engine,
        version=engine_version(spec.engine),
        model=spec.name,
        name=name,
    )
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
        rt.stop()
        host.stop()


def _say_starting(platform: Platform, queues: list[str], name: str) -> None:
    """Requests for our model wait for us while the engine loads, instead of a 503."""
    try:
        liveness.starting(platform.redis, queues, name)
    except Exception as exc:  # Redis away: requests fail fast until our first heartbeat
        log.warning("could not announce the start of %s: %s", name, exc)


def run_control(settings: Settings, *, beat: bool = True, loglevel: str = "INFO") -> None:
    """The CPU-only housekeeping worker (validation, finalisation, sweeper) plus beat."""
    platform = Platform(settings)
    name = f"control-{os.getpid()}@{socket.gethostname()}"
    rt = runtime.Runtime(platform, None, None, [CONTROL_QUEUE], name)
    runtime.install(rt)
    app = _celery(platform)
    rt.start_background()
    serve_control(platform, name)
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
    schedule = settings.var_path / f"{SCHEDULE_PREFIX}{os.getpid()}"
    if beat:
        remove_stale_schedules(settings.var_path)
        argv += ["--beat", f"--schedule={schedule}"]
    # Beat sends its tasks every second: at INFO their three lines each bury everything else.
    after_setup_logger.connect(_quiet_beat, weak=False)
    try:
        app.worker_main(argv)
    finally:
        rt.stopping.set()
        if beat:
            _remove_schedule(schedule)


# Beat's schedule file (shelve adds suffixes); one per control process, named by its pid.
SCHEDULE_PREFIX = "celerybeat-schedule-"
# Loggers that write a line per periodic task: the scheduler and the task tracer.
NOISY_LOGGERS = ("celery.beat", "celery.app.trace", "celery.worker.strategy")


def _quiet_beat(**_: Any) -> None:
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _remove_schedule(schedule: Path) -> None:
    for path in schedule.parent.glob(f"{schedule.name}*"):
        path.unlink(missing_ok=True)


def remove_stale_schedules(var_dir: Path) -> None:
    """Schedule files of control processes that are gone (killed ones never clean up)."""
    for path in var_dir.glob(f"{SCHEDULE_PREFIX}*"):
        pid = path.name.removeprefix(SCHEDULE_PREFIX).split(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
