"""gunicorn settings the ``web`` command loads as a file (not imported as ``api.*``, so the
master process stays free of the app's imports).

Each gunicorn worker process writes its Prometheus figures to files in
``PROMETHEUS_MULTIPROC_DIR``; when one exits, its live gauges (open streams) must stop counting.
"""

from __future__ import annotations

from typing import Any


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
