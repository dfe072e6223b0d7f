"""Bearer API keys on every ``/v1`` route."""

from __future__ import annotations

from flask import Flask, g, request

from api.context import platform
from inference_platform.errors import PlatformError
from inference_platform.keys import REQUEST_KEY

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
    found = p.key_verifier.identify(key) if key.startswith("sk-") else None
    if found is None:
        shown = key[:6] + "…" if len(key) > 6 else "…"
        raise _unauthorized(f"Incorrect API key provided: {shown}.")
    g.owner, key_id = found
    # Rows this request creates record the key (usage by key); reset when it ends.
    g.key_token = REQUEST_KEY.set(key_id)


def _forget_key(_: BaseException | None) -> None:
    token = g.pop("key_token", None)
    if token is not None:
        try:
            REQUEST_KEY.reset(token)
        except ValueError:  # torn down in another context (a stream's last chunk): unset
            REQUEST_KEY.set(None)


def init_app(app: Flask) -> None:
    app.before_request(_authenticate)
    app.teardown_request(_forget_key)
