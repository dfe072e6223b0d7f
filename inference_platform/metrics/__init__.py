"""Prometheus metrics: what the API, the GPU workers and the control role export.

Every family is created by a factory or on first use, never at import: the API runs under
gunicorn in prometheus_client's multiprocess mode, which is chosen from
``PROMETHEUS_MULTIPROC_DIR`` when the library is imported, and each app or process builds its
own families. ``exported_names`` lists every sample name the platform exports (the Grafana
dashboard's test checks its queries against it).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

# Sample suffixes each metric type adds to its family name.
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
    "info": ("_info",),
    "gauge": ("",),
}


def sample_names(family: Metric) -> set[str]:
    """The sample names one family exposes, observed or not."""
    return {family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",))}


def exported_names() -> set[str]:
    """Every sample name the API, the workers and the control role export."""
    from inference_platform.metrics import api, control, sweep, worker

    registry = CollectorRegistry()
    api.ApiMetrics(registry)
    worker.WorkerMetrics(registry)
    sweep.SweepMetrics(registry)
    names: set[str] = set()
    for family in registry.collect():
        names |= sample_names(family)
    for family in control.ControlCollector.describe_families():
        names |= sample_names(family)
    for family in worker.FeedCollector.describe_families():
        names |= sample_names(family)
    return names
