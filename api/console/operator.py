"""The operator's view: queues, workers and engines, throughput and every tenant's usage;
links to Flower and ``/metrics``. Signed in with the operator token, never a tenant key."""

from __future__ import annotations

from flask import render_template, request

from api.console.web import bp, operator_page
from api.context import platform
from inference_platform import operations

TENANT_USAGE_SECONDS = 86400


@bp.get("/operator/")
@operator_page
def operator_overview() -> str:
    """Per model and tier: waiting work, its age, workers, tokens/s; tenants' usage today."""
    settings = platform().settings
    # Flower listens beside the API; the browser reaches it by the name it used for us.
    flower = f"{request.scheme}://{request.host.rsplit(':', 1)[0]}:{settings.flower_port}/"
    return render_template(
        "console/operator.html",
        queues=operations.queues(platform()),
        workers=operations.workers(platform()),
        tenants=operations.tenants(platform(), TENANT_USAGE_SECONDS),
        capacity=operations.capacity(platform()),
        deadlines=operations.deadlines(platform(), TENANT_USAGE_SECONDS),
        window=operations.THROUGHPUT_WINDOW_SECONDS,
        flower_url=flower,
        metrics_url="/metrics",
    )
