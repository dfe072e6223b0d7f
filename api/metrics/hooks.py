"""Count every request as it leaves; streams are watched until their last byte.

Under gunicorn every process writes to the multiprocess directory and ``/metrics`` sums
them; without it (a test client, ``flask run``) the app's own registry is served.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

from inference_platform.metrics.api import ApiMetrics
from inference_platform.platform import Platform
from inference_platform.tiers import BATCH, tier_for

# Label values for requests that name no tier or model, or a model not in the catalog (so a
# client cannot mint new series with made-up names).
NONE = "none"
OTHER = "other"
# Statuses whose body was never read by a view: parsing it here would only add work.
_UNPARSED = {401, 413}


@dataclass(frozen=True)
class _Labels:
    route: str
    tier: str
    model: str


def _labels(status: int) -> _Labels:
    rule = request.url_rule
    route = rule.rule if rule is not None else "unmatched"
    body: Any = None
    if request.is_json and status not in _UNPARSED:
        try:
            body = request.get_json(silent=True)
        except RecursionError:  # nested too deep to parse: the view refused it already
            body = None
    if not isinstance(body, dict):
        return _Labels(route, NONE, NONE)
    platform: Platform = current_app.extensions["platform"]
    name = body.get("model")
    model = NONE if name is None else name if platform.catalog.get(str(name)) else OTHER
    if route == "/v1/batches" and request.method == "POST":
        return _Labels(route, BATCH, NONE)
    tier = tier_for(body.get("service_tier")) if name is not None else NONE
    return _Labels(route, tier, model)


def _start() -> None:
    g.metrics_started = time.perf_counter()


def _count(response: Response) -> Response:
    metrics: ApiMetrics = current_app.extensions["metrics"]
    labels = _labels(response.status_code)
    started: float = g.get("metrics_started", time.perf_counter())
    metrics.requests.labels(
        labels.route, request.method, labels.tier, labels.model, str(response.status_code)
    ).inc()
    if response.status_code == 429:
        metrics.rate_limited.labels(labels.route, labels.tier, labels.model).inc()
    if response.is_streamed and response.mimetype == "text/event-stream":
        response.response = _watched(response.response, metrics, labels, started)
    else:
        metrics.latency.labels(labels.route, labels.tier).observe(time.perf_counter() - started)
    return response


def _first_text(chunk: Any) -> bool:
    """Whether an SSE chunk carries generated text (not a created/in-progress notice)."""
    data = chunk.decode(errors="replace") if isinstance(chunk, bytes) else str(chunk)
    if data.startswith("event: "):
        return data.startswith("event: response.output_text.delta")
    return data.startswith("data: {")


def _watched(
    chunks: Iterable[Any], metrics: ApiMetrics, labels: _Labels, started: float
) -> Iterator[Any]:
    """Relay a stream, timing its first text and its end, and counting it while open."""
    open_streams = metrics.open_streams.labels(labels.route, labels.tier)
    open_streams.inc()
    first = True
    try:
        for chunk in chunks:
            if first and _first_text(chunk):
                first = False
                metrics.ttft.labels(labels.route, labels.tier, labels.model).observe(
                    time.perf_counter() - started
                )
            yield chunk
    finally:
        open_streams.dec()
        metrics.latency.labels(labels.route, labels.tier).observe(time.perf_counter() - started)
        # Werkzeug closes what it iterates; pass that on so the stream's own cleanup runs
        # (it aborts the generation when the client left).
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def metrics_view() -> Response:
    """Prometheus text format: every API process's figures under gunicorn, else this app's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = current_app.extensions["metrics_registry"]
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    registry = CollectorRegistry()
    app.extensions["metrics_registry"] = registry
    app.extensions["metrics"] = ApiMetrics(registry)
    app.before_request(_start)
    app.after_request(_count)
    app.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])
