"""Server-side console sessions and CSRF tokens.

The browser holds only a random session id, in an ``HttpOnly``, ``SameSite=Lax`` cookie
scoped to ``/console``; what it stands for (the tenant, the id and role of the key signed in
with, never the key itself; the CSRF token; messages for the next page) lives in Redis under
the id's hash and expires there. Signing in starts a new id, so an id planted before sign-in
is worth nothing after it. Every form carries the session's CSRF token, checked on every
POST before any view runs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from flask import Response, g, request

from api.context import platform

COOKIE = "console_session"
# An anonymous session (the sign-in form's CSRF token) lasts this long.
ANONYMOUS_SECONDS = 3600
ANONYMOUS, TENANT, OPERATOR = "anonymous", "tenant", "operator"


@dataclass
class Session:
    kind: str
    csrf: str
    expires_at: float
    tenant: str | None = None
    key_id: str | None = None
    key_hint: str | None = None
    role: str | None = None
    flashes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def signed_in(self) -> bool:
        return self.kind in (TENANT, OPERATOR)


def _redis_key(sid: str) -> str:
    # The hash, so a look at Redis does not hand out live cookies.
    return "console:session:" + hashlib.sha256(sid.encode()).hexdigest()


def _store(sid: str, session: Session) -> None:
    ttl = max(1, int(session.expires_at - time.time()))
    platform().redis.set(_redis_key(sid), json.dumps(asdict(session)), ex=ttl)


def load() -> None:
    """Find this request's session (``g.session``); ``g.session_expired`` when the browser
    sent an id that Redis no longer knows (it expired, or its owner signed out)."""
    g.session, g.session_id, g.session_expired, g.session_dirty = None, None, False, False
    sid = request.cookies.get(COOKIE)
    if not sid:
        return
    raw = platform().redis.get(_redis_key(sid))
    if raw is None:
        g.session_expired = True
        return
    data: dict[str, Any] = json.loads(raw)
    data["flashes"] = [tuple(f) for f in data.get("flashes", [])]
    g.session, g.session_id = Session(**data), sid


def current() -> Session:
    """This request's session, an anonymous one made now if it has none."""
    if g.session is None:
        start(ANONYMOUS, ANONYMOUS_SECONDS)
    found: Session = g.session
    return found


def start(kind: str, seconds: float, **fields: Any) -> Session:
    """A new session under a new id (the old one, if any, is dropped)."""
    end()
    g.session = Session(kind, secrets.token_urlsafe(32), time.time() + seconds, **fields)
    g.session_id = secrets.token_urlsafe(32)
    g.session_dirty = True
    return g.session  # type: ignore[no-any-return]


def end() -> None:
    if g.get("session_id"):
        platform().redis.delete(_redis_key(g.session_id))
    g.session, g.session_id, g.session_dirty = None, None, False
    g.session_ended = True


def flash(message: str, category: str = "info") -> None:
    """A message for the next page shown in this session."""
    current().flashes.append((category, message))
    g.session_dirty = True


def take_flashes() -> list[tuple[str, str]]:
    session = g.get("session")
    if session is None or not session.flashes:
        return []
    found: list[tuple[str, str]] = session.flashes
    session.flashes = []
    g.session_dirty = True
    return found


def csrf_token() -> str:
    return current().csrf


def csrf_ok() -> bool:
    """Does this POST carry its session's CSRF token?"""
    sent = request.form.get("csrf_token", "")
    session = g.get("session")
    # As bytes: compare_digest refuses str with non-ASCII characters (a forged form may send any).
    return (
        session is not None
        and bool(sent)
        and hmac.compare_digest(sent.encode(errors="replace"), session.csrf.encode())
    )


def save(response: Response) -> Response:
    """Write a changed session back and keep the browser's cookie in step."""
    if g.get("session_dirty") and g.get("session") is not None:
        _store(g.session_id, g.session)
        response.set_cookie(
            COOKIE,
            g.session_id,
            max_age=max(1, int(g.session.expires_at - time.time())),
            path="/console",
            httponly=True,
            samesite="Lax",
            secure=request.is_secure,
        )
    elif g.get("session_ended"):
        response.delete_cookie(COOKIE, path="/console")
    return response
