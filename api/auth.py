"""Bearer API keys on every ``/v1`` route."""

from __future__ import annotations

from flask import Flask, g, request

from api.context import platform
from inference_platform.errors import PlatformError

OPEN_TENANT = "default"


def _unauthorized(message: str) -> PlatformError:
    return PlatformError(401, message, code="invalid_api_key")


def _authenticate() -> None:
    if not request.path.startswith("/v1"):
        return
    p = platform()
    if not p.settings.auth:
        g.owner = OPEN_TENANT
        return
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise _unauthorized(
            "You didn't provide an API key. Send it as `Authorization: Bearer sk-...`."
        )
    key = key.strip()
    tenant = p.key_verifier.tenant_for(key) if key.startswith("sk-") else None
    if tenant is None:
        shown = key[:6] + "…" if len(key) > 6 else "…"
        raise _unauthorized(f"Incorrect API key provided: {shown}.")
    g.owner = tenant


def init_app(app: Flask) -> None:
    app.before_request(_authenticate)
