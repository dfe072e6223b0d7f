"""Signing in and out: tenants with an API key, the operator with the operator token.

The key is checked as the API checks it (``KeyVerifier``) and then forgotten: the session
keeps the key's id, hint and role, so the key is never stored in the browser nor shown again.
"""

from __future__ import annotations

import hmac

from flask import g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from api.console import session
from api.console.web import Page, bp, refusal
from api.context import platform
from inference_platform.keys import key_info


def _next_page(default: str) -> str:
    target = request.args.get("next") or ""
    # Only a path inside the console: never an address elsewhere.
    if target.startswith("/console/") and not target.startswith("//"):
        return target
    return url_for(default)


@bp.get("/")
def home() -> BaseResponse:
    """The batches for a tenant, the overview for the operator, else the sign-in page."""
    s = g.session
    if s is not None and s.kind == session.OPERATOR:
        return redirect(url_for("console.operator_overview"))
    if s is not None and s.kind == session.TENANT:
        return redirect(url_for("console.batches_page"))
    return redirect(url_for("console.sign_in"))


@bp.get("/sign-in")
def sign_in() -> str:
    """The sign-in form (it starts an anonymous session for its CSRF token)."""
    session.current()
    return render_template("console/sign_in.html", operator=False)


@bp.post("/sign-in")
def sign_in_post() -> Page:
    """Check the key; a new session for its tenant, or the form again with why not."""
    key = request.form.get("api_key", "").strip()
    found = platform().key_verifier.verify(key) if key.startswith("sk-") else None
    if found is None:
        shown = key[:6] + "…" if len(key) > 6 else "…"
        page = render_template(
            "console/sign_in.html",
            operator=False,
            error=f"Incorrect API key provided: {shown}. Paste a key printed by make run "
            "or inference-platform keys create.",
        )
        return page, 401
    info = key_info(platform().db, found.id)
    session.start(
        session.TENANT,
        platform().settings.console_session_seconds,
        tenant=found.tenant,
        key_id=found.id,
        key_hint=info.hint if info else None,
        role=found.role,
    )
    return redirect(_next_page("console.batches_page"))


@bp.post("/sign-out")
def sign_out() -> BaseResponse:
    """End the session here and in Redis."""
    operator = g.session is not None and g.session.kind == session.OPERATOR
    session.end()
    session.start(session.ANONYMOUS, session.ANONYMOUS_SECONDS)
    session.flash("Signed out.")
    return redirect(url_for("console.operator_sign_in" if operator else "console.sign_in"))


@bp.get("/operator/sign-in")
def operator_sign_in() -> Page:
    """The operator's sign-in form (the operator token, never a tenant's key)."""
    if not platform().settings.console_operator_token:
        return _operator_off()
    session.current()
    return render_template("console/sign_in.html", operator=True)


@bp.post("/operator/sign-in")
def operator_sign_in_post() -> Page:
    token = platform().settings.console_operator_token
    if not token:
        return _operator_off()
    sent = request.form.get("operator_token", "").strip()
    if not hmac.compare_digest(sent.encode(), token.encode()):
        why = "That is not the operator token."
        if sent.startswith("sk-"):
            why = "That is a tenant's API key; the operator view takes the operator token."
        page = render_template("console/sign_in.html", operator=True, error=why)
        return page, 401
    session.start(session.OPERATOR, platform().settings.console_session_seconds)
    return redirect(_next_page("console.operator_overview"))


def _operator_off() -> tuple[str, int]:
    return refusal(
        404,
        "Operator view is off",
        "Set INFERENCE_CONSOLE_OPERATOR_TOKEN to a secret to turn the operator view on "
        "(inference-platform up makes one and prints it).",
    )
