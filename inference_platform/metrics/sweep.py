"""The sweeper's actions, counted as it takes them (on the control role): work requeued after
a lapsed lease, failed at the attempt cap, jobs expired past their deadline, batches expired
past their window."""

from __future__ import annotations

import threading

from prometheus_client import REGISTRY, CollectorRegistry, Counter


class SweepMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.actions = Counter(
            "inference_sweeper_actions",
            "What the sweeper did: requeued (lapsed lease), failed_at_cap (attempt cap), "
            "expired (a job past its deadline), batch_expired (a batch past its window).",
            ["action"],
            registry=registry,
        )


SWEEP_ACTIONS = ("requeued", "failed_at_cap", "expired", "batch_expired")

_lock = threading.Lock()
_sweep: SweepMetrics | None = None


def _sweep_metrics() -> SweepMetrics:
    global _sweep
    with _lock:
        if _sweep is None:
            _sweep = SweepMetrics()
        return _sweep


def init_sweep() -> None:
    """Show every action at 0 from the start, so rate() has a series before the first one."""
    for action in SWEEP_ACTIONS:
        _sweep_metrics().actions.labels(action)


def swept(action: str, count: int) -> None:
    """The sweeper took ``action`` on ``count`` pieces of work (families made on first use)."""
    if count > 0:
        _sweep_metrics().actions.labels(action).inc(count)
