"""Bearer API keys on every ``/v1`` route, and the admin-only routes.

A blueprint (or one view) that only admin keys may use calls ``require_admin`` before its
views: ``bp.before_request(require_admin)``. A member key gets 403
``insufficient_permissions`` in the OpenAI envelope.
"""

from __future__ import annotations

from flask import Flask, g, request

from api.context import platform
from inference_platform.errors import PlatformError
from inference_platform.keys import ADMIN, REQUEST_KEY

OPEN_TENANT = "default"


def _unauthorized(message: str) -> PlatformError:
    return PlatformError(401, message, code="invalid_api_key")


def _authenticate() -> None:
    if not request.path.startswith("/v1"):
        return
    p = platform()
    if not p.settings.auth:
        # No keys at all (a private, single-user setup): the one user is the operator.
        g.owner, g.role = OPEN_TENANT, ADMIN
        return
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if not header and request.headers.get("x-api-key"):
        # Anthropic's clients send the key as `x-api-key`.
        scheme, key = "bearer", request.headers["x-api-key"]
    if scheme.lower() != "bearer" or not key.strip():
        raise _unauthorized(
            "You didn't provide an API key. Send it as `Authorization: Bearer sk-...`."
        )
    key = key.strip()
    found = p.key_verifier.verify(key) if key.startswith("sk-") else None
    if found is None:
        shown = key[:6] + "…" if len(key) > 6 else "…"
        raise _unauthorized(f"Incorrect API key provided: {shown}.")
    g.owner, g.role = found.tenant, found.role
    # Rows this request creates record the key (usage by key); reset when it ends.
    g.key_token = REQUEST_KEY.set(found.id)


def require_admin() -> None:
    """403 unless the request's key is an admin key (register as a ``before_request``)."""
    if getattr(g, "role", None) == ADMIN:
        return
    raise PlatformError(
        403,
        f"You have insufficient permissions for this operation: {request.method} "
        f"{request.path} needs an admin API key; this key is a member key. Create one with "
        "`inference-platform keys create --role admin`.",
        code="insufficient_permissions",
    )


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
