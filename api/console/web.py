"""The console's blueprint: sessions, CSRF on every POST, who may see which page, refusals
as pages a person can read, and the headers every console page carries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from flask import Blueprint, Response, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from api.console import session
from api.context import platform
from inference_platform.errors import PlatformError
from inference_platform.keys import ADMIN, key_info

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

P = ParamSpec("P")
R = TypeVar("R")
Page = str | Response | BaseResponse | tuple[str, int]

# Scripts and styles come only from this server; no page may be framed (clickjacking).
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Pages show keys and secrets once; no cache may keep them.
    "Cache-Control": "no-store",
}


def refusal(status: int, title: str, message: str) -> tuple[str, int]:
    return render_template("console/refused.html", title=title, message=message), status


@bp.before_request
def _open_session() -> Page | None:
    session.load()
    if request.method == "POST" and not session.csrf_ok():
        if g.session_expired:
            return _to_sign_in(request.path)
        return refusal(
            403,
            "Form refused",
            "This form did not carry this session's CSRF token, so it was not sent by this "
            "console page. Nothing was changed. Reload the page and try again.",
        )
    return None


@bp.after_request
def _close_session(response: Response) -> Response:
    for name, value in _HEADERS.items():
        response.headers.setdefault(name, value)
    return session.save(response)


@bp.errorhandler(PlatformError)
def _platform_error(err: PlatformError) -> tuple[str, int]:
    titles = {403: "Not allowed", 404: "Not found"}
    return refusal(err.status, titles.get(err.status, "Refused"), err.message)


@bp.app_template_filter("ts")
def _ts(value: int | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@bp.app_template_filter("usd")
def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:,.6f}"


@bp.app_template_global("csrf_token")
def _csrf_token() -> str:
    return session.csrf_token()


@bp.app_template_global("flashes")
def _flashes() -> list[tuple[str, str]]:
    return session.take_flashes()


def _to_sign_in(path: str, operator: bool = False) -> BaseResponse:
    if g.session_expired:
        session.flash("Your session has expired. Sign in again.", "error")
    target = "console.operator_sign_in" if operator else "console.sign_in"
    return redirect(url_for(target, next=path if path.startswith("/console/") else None))


def _key_active(key_id: str | None) -> bool:
    found = key_info(platform().db, key_id) if key_id else None
    return found is not None and found.revoked_at is None


def tenant_page(view: Callable[P, Page]) -> Callable[P, Page]:
    """Signed in with a tenant's key that is still valid; else to the sign-in page."""

    @wraps(view)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> Page:
        s = g.session
        if s is None or s.kind != session.TENANT:
            return _to_sign_in(request.path)
        if not _key_active(s.key_id):
            session.end()
            session.flash("The API key this session was signed in with has been revoked.", "error")
            return redirect(url_for("console.sign_in"))
        return view(*args, **kwargs)

    return guarded


def admin_page(view: Callable[P, Page]) -> Callable[P, Page]:
    """As ``tenant_page``, for what the API keeps for admin keys (usage, keys, webhooks)."""

    @wraps(view)
    def admin_only(*args: P.args, **kwargs: P.kwargs) -> Page:
        if g.session.role != ADMIN:
            return refusal(
                403,
                "Admin key needed",
                "This page needs a session signed in with an admin API key; this session's key "
                "is a member key. Sign in with an admin key (inference-platform keys create "
                "--role admin makes one).",
            )
        return view(*args, **kwargs)

    return tenant_page(admin_only)


def operator_page(view: Callable[P, Page]) -> Callable[P, Page]:
    """Signed in with the operator token."""

    @wraps(view)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> Page:
        s = g.session
        if s is None or s.kind != session.OPERATOR:
            return _to_sign_in(request.path, operator=True)
        return view(*args, **kwargs)

    return guarded


def owner() -> str:
    tenant: str = g.session.tenant
    return tenant


@bp.context_processor
def _layout() -> dict[str, Any]:
    """What the layout needs on every page: who is signed in, and as what."""
    s = g.get("session")
    return {"session": s, "is_admin": s is not None and s.role == ADMIN}
