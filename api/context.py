"""Request-scoped accessors for views."""

from __future__ import annotations

from flask import current_app, g

from inference_platform.platform import Platform


def platform() -> Platform:
    found: Platform = current_app.extensions["platform"]
    return found


def owner() -> str:
    """The tenant of the API key that made this request."""
    tenant: str = g.owner
    return tenant
