"""Families of a GPU worker: requests in flight by tier, tokens generated, queue wait
(enqueue to start) by tier, and the engine's kind and version. The same reports feed the
capacity model's meter (``capacity.meter``).

A worker process serves the default registry on its own port (``serve``), so vLLM's own
metrics, which vLLM registers there, come along. The feed reports each piece of work as it
starts and ends through ``started`` and ``ended``; the families are made on first use, once
per process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, Info
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from inference_platform.capacity.meter import METER

# Realtime waits milliseconds, flex minutes, a 24 h batch's last lines hours.
WAIT_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400,
)  # fmt: skip


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.generated = Counter(
            "inference_worker_generated_tokens",
            "Output tokens generated, by tier and model (counted as each request ends).",
            ["tier", "model"],
            registry=registry,
        )
        self.prompt = Counter(
            "inference_worker_prompt_tokens",
            "Prompt tokens processed, by tier and model (counted as each request ends).",
            ["tier", "model"],
            registry=registry,
        )
        self.finished = Counter(
            "inference_worker_requests",
            "Requests, jobs and batch lines that ended on this worker, by outcome.",
            ["tier", "model", "outcome"],
            registry=registry,
        )
        self.queue_wait = Histogram(
            "inference_worker_queue_wait_seconds",
            "Time from enqueue to the start of a first attempt, by tier.",
            ["tier", "model"],
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        self.engine = Info(
            "inference_worker_engine",
            "The engine this worker hosts: kind, library version, model and worker name.",
            registry=registry,
        )


_lock = threading.Lock()
_metrics: WorkerMetrics | None = None


def metrics() -> WorkerMetrics:
    """This process's families, made on first use."""
    global _metrics
    with _lock:
        if _metrics is None:
            _metrics = WorkerMetrics()
        return _metrics


class _Tokens(Protocol):
    @property
    def prompt_tokens(self) -> int: ...

    @property
    def completion_tokens(self) -> int: ...


def started(tier: str, model: str, attempt: int, enqueued_at: datetime) -> None:
    """A piece of work began generating; a first attempt reports how long it waited."""
    METER.started()
    if attempt <= 1:
        waited = (datetime.now(UTC) - enqueued_at).total_seconds()
        # Clocks of the API host and this worker may differ a little: never negative.
        metrics().queue_wait.labels(tier, model).observe(max(0.0, waited))


def ended(tier: str, model: str, result: _Tokens, *, failed: bool) -> None:
    """A piece of work ended: its tokens and outcome."""
    METER.ended(result.prompt_tokens, result.completion_tokens)
    m = metrics()
    m.finished.labels(tier, model, "failed" if failed else "completed").inc()
    m.generated.labels(tier, model).inc(result.completion_tokens)
    m.prompt.labels(tier, model).inc(result.prompt_tokens)


class HasInFlight(Protocol):
    model: str

    @property
    def in_flight(self) -> int: ...


IN_FLIGHT = "inference_worker_requests_in_flight"


class FeedCollector(Collector):
    """Requests in flight per tier, read from the worker's feeds at scrape time."""

    def __init__(self, feeds: Callable[[], Mapping[str, HasInFlight]]) -> None:
        self._feeds = feeds

    @staticmethod
    def describe_families() -> list[Metric]:
        return [
            GaugeMetricFamily(
                IN_FLIGHT,
                "Realtime requests, jobs and batch lines generating on this worker, by tier.",
                labels=["tier", "model"],
            )
        ]

    def describe(self) -> list[Metric]:
        return self.describe_families()

    def collect(self) -> Iterator[Metric]:
        (family,) = self.describe_families()
        assert isinstance(family, GaugeMetricFamily)
        for tier, feed in sorted(self._feeds().items()):
            family.add_metric([tier, feed.model], feed.in_flight)
        yield family


def describe_engine(*, kind: str, version: str, model: str, worker: str) -> None:
    metrics().engine.info({"kind": kind, "version": version, "model": model, "worker": worker})
