"""gunicorn settings for running the API directly (a container, a process manager):

    gunicorn -c deploy/gunicorn.conf.py 'api:create_app()'

Read from the same ``INFERENCE_*`` variables as ``inference-platform web``, which passes the
same values on its command line. The worker classes (answers in the OpenAI envelope for
requests gunicorn cannot read) and the exit hook come from ``api/gunicorn_conf.py``, run as a
file for the same reason the ``web`` command loads it so: the master never imports the app."""

from __future__ import annotations

import os
import runpy
from pathlib import Path

from inference_platform.settings import Settings

_s = Settings.from_env()
_shared = runpy.run_path(str(Path(__file__).resolve().parent.parent / "api" / "gunicorn_conf.py"))

bind = f"{_s.host}:{_s.port}"
workers = _s.web_workers
worker_class = _shared["worker_class"]
worker_connections = _s.web_connections
threads = _s.web_threads
timeout = 120
graceful_timeout = 10
# Longer than a load balancer's idle timeout, so it never reuses a connection we closed.
keepalive = 75
accesslog = "-"
# Prometheus figures of every worker process are shared through files here.
raw_env = [f"PROMETHEUS_MULTIPROC_DIR={os.environ.get('PROMETHEUS_MULTIPROC_DIR', '')}"]
child_exit = _shared["child_exit"]
post_worker_init = _shared["post_worker_init"]
