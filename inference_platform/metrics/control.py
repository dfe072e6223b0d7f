"""Families of the control role: queue depth per tier and model (from the broker and from
Postgres), jobs by status, batches by status with each running batch's lines and seconds to
its deadline. The sweeper's actions are counted in ``metrics.sweep``.

The gauges are read at scrape time (``ControlCollector``), so they are as fresh as the
scrape and cost nothing between scrapes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import text

from inference_platform.celery_app import queue_name
from inference_platform.jobs.dispatch import backlog
from inference_platform.platform import Platform

log = logging.getLogger(__name__)

# Batches still running, for their per-batch series; the most urgent first, and a bound so a
# flood of small batches cannot flood the time series database.
RUNNING_BATCHES = ("validating", "in_progress", "finalizing", "cancelling")
MAX_BATCH_SERIES = 200

_QUEUED = "SELECT tier, model, count(*) FROM requests WHERE status = 'queued' GROUP BY 1, 2"
_JOBS = "SELECT tier, status, count(*) FROM requests WHERE batch_id IS NULL GROUP BY 1, 2"
_BATCHES = "SELECT status, count(*) FROM batches GROUP BY 1"
_RUNNING = (
    "SELECT id, coalesce(model, ''), completion_window, total, expires_at FROM batches "
    "WHERE status = ANY(:running) ORDER BY expires_at NULLS LAST LIMIT :n"
)
_DONE = (
    "SELECT batch_id, count(*) FROM requests WHERE batch_id = ANY(:ids) "
    "AND status NOT IN ('queued', 'in_progress') GROUP BY 1"
)


def _families() -> dict[str, GaugeMetricFamily]:
    batch = ["batch_id", "model", "completion_window"]
    specs = [
        ("inference_queue_depth", "Work waiting per tier and model: messages on the broker's "
         "queue (source=broker) and queued rows in Postgres (source=postgres).",
         ["tier", "model", "source"]),
        ("inference_jobs", "Background and flex jobs by tier and status.", ["tier", "status"]),
        ("inference_batches", "Batches by status.", ["status"]),
        ("inference_batch_lines", "Lines of each running batch.", batch),
        ("inference_batch_lines_done", "Finished lines of each running batch.", batch),
        ("inference_batch_deadline_seconds",
         "Seconds until each running batch's completion window closes (negative: past).", batch),
        ("inference_control_up", "1 when the last scrape could read the broker and Postgres.",
         []),
    ]  # fmt: skip
    return {name: GaugeMetricFamily(name, doc, labels=labels) for name, doc, labels in specs}


class ControlCollector(Collector):
    def __init__(self, platform: Platform) -> None:
        self._platform = platform

    @staticmethod
    def describe_families() -> list[Metric]:
        return list(_families().values())

    def describe(self) -> list[Metric]:
        return self.describe_families()

    def collect(self) -> Iterator[Metric]:
        families = _families()
        up = families.pop("inference_control_up")
        try:
            self._broker(families["inference_queue_depth"])
            self._postgres(families)
            up.add_metric([], 1)
        except Exception as exc:  # a scrape must answer even while a service is away
            log.warning("collecting control metrics failed: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        yield from families.values()
        yield up

    def _broker(self, depth: GaugeMetricFamily) -> None:
        for spec in self._platform.catalog:
            for tier in spec.tiers:
                waiting = backlog(self._platform, queue_name(tier, spec.name))
                depth.add_metric([tier, spec.name, "broker"], waiting)

    def _postgres(self, families: dict[str, GaugeMetricFamily]) -> None:
        now = datetime.now(UTC)
        with self._platform.db.session() as s:
            for tier, model, n in s.execute(text(_QUEUED)):
                families["inference_queue_depth"].add_metric([tier, model, "postgres"], n)
            for tier, status, n in s.execute(text(_JOBS)):
                families["inference_jobs"].add_metric([tier, status], n)
            for status, n in s.execute(text(_BATCHES)):
                families["inference_batches"].add_metric([status], n)
            running = s.execute(
                text(_RUNNING), {"running": list(RUNNING_BATCHES), "n": MAX_BATCH_SERIES}
            ).all()
            ids = [row[0] for row in running]
            done: dict[str, int] = {}
            if ids:
                done = {b: int(n) for b, n in s.execute(text(_DONE), {"ids": ids})}
        for batch_id, model, window, total, expires_at in running:
            labels = [batch_id, model, window]
            families["inference_batch_lines"].add_metric(labels, total)
            families["inference_batch_lines_done"].add_metric(labels, done.get(batch_id, 0))
            if expires_at is not None:
                left = (expires_at - now).total_seconds()
                families["inference_batch_deadline_seconds"].add_metric(labels, left)
