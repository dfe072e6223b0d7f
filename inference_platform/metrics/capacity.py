"""Families of the control role for the deadline promise: work that ended inside its window
vs late over the last day (per tier, model and window), and per model the engine's busy
fraction, its measured throughput and the work queued, from the capacity model's profiles.
Read at scrape time, like ``metrics.control``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from inference_platform.capacity import sla
from inference_platform.capacity.estimate import load_profile
from inference_platform.platform import Platform

log = logging.getLogger(__name__)

SLA_WINDOW = timedelta(days=1)


def _families() -> dict[str, GaugeMetricFamily]:
    specs = [
        ("inference_sla_work", "Batches and flex jobs that ended in the last 24 h, on time "
         "(inside their window) or late (expired, or ended after it).",
         ["tier", "model", "window", "outcome"]),
        ("inference_engine_busy_fraction", "Share of the recent minutes the model's engines "
         "had work in flight (mean over live workers).", ["model"]),
        ("inference_capacity_tokens_per_second", "The model's throughput as the capacity "
         "model counts it (output tokens, prompt tokens weighted 1/8, per second; all live "
         "workers).", ["model"]),
        ("inference_capacity_queued_seconds", "Seconds the model's queued batch and flex "
         "work needs at that throughput.", ["model"]),
    ]  # fmt: skip
    return {name: GaugeMetricFamily(name, doc, labels=labels) for name, doc, labels in specs}


class CapacityCollector(Collector):
    def __init__(self, platform: Platform) -> None:
        self._platform = platform

    def describe(self) -> list[Metric]:
        return list(_families().values())

    def collect(self) -> Iterator[Metric]:
        families = _families()
        try:
            self._scores(families["inference_sla_work"])
            self._profiles(families)
        except Exception as exc:  # a scrape must answer even while a service is away
            log.warning("collecting capacity metrics failed: %s", exc)
        yield from families.values()

    def _scores(self, family: GaugeMetricFamily) -> None:
        since = datetime.now(UTC) - SLA_WINDOW
        with self._platform.db.session() as s:
            for score in sla.scores(s, since):
                labels = [score.tier, score.model, score.window]
                family.add_metric([*labels, sla.ON_TIME], score.on_time)
                family.add_metric([*labels, sla.LATE], score.late)

    def _profiles(self, families: dict[str, GaugeMetricFamily]) -> None:
        for spec in self._platform.catalog:
            profile = load_profile(self._platform, spec.name)
            if profile is None:
                continue
            families["inference_engine_busy_fraction"].add_metric([spec.name], profile.busy)
            if profile.rate is not None:
                families["inference_capacity_tokens_per_second"].add_metric(
                    [spec.name], profile.rate
                )
            queued = sum(w for _, w in profile.items)
            families["inference_capacity_queued_seconds"].add_metric(
                [spec.name], profile.seconds(queued)
            )
