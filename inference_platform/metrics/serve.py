"""The metrics endpoints of worker and control processes, each on a port of its own.

The control role binds ``INFERENCE_METRICS_PORT``, workers the first free port above it, so
several processes on one host never collide; each logs the port it took. With the setting at
0 the system picks any free port (logged too).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from prometheus_client import REGISTRY, start_http_server

from inference_platform.metrics import capacity, control, sweep, worker
from inference_platform.platform import Platform
from inference_platform.settings import Settings

log = logging.getLogger(__name__)

# How many ports above the first one a process tries before it gives up on metrics.
PORT_TRIES = 100


def _bind(host: str, first: int, role: str) -> int | None:
    candidates = [0] if first == 0 else list(range(first, first + PORT_TRIES))
    for port in candidates:
        try:
            server, _thread = start_http_server(port, addr=host, registry=REGISTRY)
        except OSError:
            continue
        bound = int(server.server_port)
        log.info("%s metrics on http://%s:%d/metrics", role, host, bound)
        return bound
    log.warning("no free port for %s metrics in %d..%d", role, first, first + PORT_TRIES - 1)
    return None


def serve_worker(
    settings: Settings,
    *,
    feeds: Callable[[], Mapping[str, worker.HasInFlight]],
    engine: str,
    version: str,
    model: str,
    name: str,
) -> int | None:
    """Serve a GPU worker's metrics (and vLLM's, which share its registry); the port or None."""
    REGISTRY.register(worker.FeedCollector(feeds))
    worker.describe_engine(kind=engine, version=version, model=model, worker=name)
    first = settings.metrics_port + 1 if settings.metrics_port else 0
    return _bind(settings.host, first, f"worker {name}")


def serve_control(platform: Platform, name: str) -> int | None:
    """Serve the control role's metrics; the port or None."""
    REGISTRY.register(control.ControlCollector(platform))
    REGISTRY.register(capacity.CapacityCollector(platform))
    sweep.init_sweep()
    return _bind(platform.settings.host, platform.settings.metrics_port, f"control {name}")
