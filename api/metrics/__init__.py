"""The API's Prometheus metrics: hooks that count every request, and ``GET /metrics``."""

from api.metrics.hooks import init_app

__all__ = ["init_app"]
