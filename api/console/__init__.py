"""The web console under ``/console/``: a tenant's batches, flex work, usage, keys, limits
and webhooks; the operator's queues, workers and tenants. Server-rendered pages that call the
same serving functions as the API's views (no second data path)."""

from __future__ import annotations

from flask import Flask

# The view modules register their routes on ``bp`` when imported.
from api.console import account, operator, signin, webhooks, work
from api.console.web import bp

__all__ = ["account", "bp", "init_app", "operator", "signin", "webhooks", "work"]


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
