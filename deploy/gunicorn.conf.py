"""gunicorn settings for running the API directly (a container, a process manager):

    gunicorn -c deploy/gunicorn.conf.py 'api:create_app()'

Read from the same ``INFERENCE_*`` variables as ``inference-platform web``, which passes the
same values on its command line."""

from __future__ import annotations

import os
from typing import Any

from inference_platform.settings import Settings

_s = Settings.from_env()

bind = f"{_s.host}:{_s.port}"
workers = _s.web_workers
# gevent: a greenlet per open stream; gthread: a thread per open stream.
worker_class = _s.web_worker_class
worker_connections = _s.web_connections
threads = _s.web_threads
timeout = 120
graceful_timeout = 10
# Longer than a load balancer's idle timeout, so it never reuses a connection we closed.
keepalive = 75
accesslog = "-"
# Prometheus figures of every worker process are shared through files here.
raw_env = [f"PROMETHEUS_MULTIPROC_DIR={os.environ.get('PROMETHEUS_MULTIPROC_DIR', '')}"]


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
