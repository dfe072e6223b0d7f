"""The web console's pages through Flask's test client on real Postgres and Redis (no
workers): every page renders for a signed-in tenant and the operator, and the refusals hold.
The browser tests (tests/e2e/test_console*.py) drive the same pages with live work."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator

import pytest
import redis
from flask.testing import FlaskClient

from api import create_app
from inference_platform.db import Database
from inference_platform.keys import ADMIN, MEMBER, create_key
from inference_platform.settings import Settings

TOKEN = "operator-token-for-tests"
TENANT_PAGES = ("/batches", "/responses", "/usage", "/usage?days=31", "/keys", "/limits",
                "/webhooks")  # fmt: skip


@pytest.fixture
def web(settings: Settings) -> Iterator[FlaskClient]:
    app = create_app(settings.replace(console_operator_token=TOKEN))
    with app.test_client() as client:
        yield client


def _csrf(web: FlaskClient, path: str) -> str:
    page = web.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def _sign_in(web: FlaskClient, key: str) -> None:
    token = _csrf(web, "/console/sign-in")
    answer = web.post("/console/sign-in", data={"csrf_token": token, "api_key": key})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert answer.headers["Location"] == "/console/batches"


def test_every_tenant_page_renders(web: FlaskClient, db: Database, settings: Settings) -> None:
    key, _ = create_key(db, tenant="console-pages", name="pages", role=ADMIN)
    _sign_in(web, key)
    for path in TENANT_PAGES:
        answer = web.get("/console" + path)
        assert answer.status_code == 200, (path, answer.get_data(as_text=True)[:2000])
        assert "console-pages" in answer.get_data(as_text=True)
        assert answer.headers["Cache-Control"] == "no-store"
        assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
    cookie = web.get_cookie("console_session", path="/console")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    assert key not in cookie.value
    # The session lives in Redis, and only as long as the setting says.
    stored = "console:session:" + hashlib.sha256(cookie.value.encode()).hexdigest()
    ttl = redis.Redis.from_url(settings.redis_url).ttl(stored)
    assert settings.console_session_seconds - 60 < ttl <= settings.console_session_seconds


def test_unknown_objects_are_404_pages(web: FlaskClient, db: Database) -> None:
    key, _ = create_key(db, tenant="console-pages", name="pages", role=ADMIN)
    _sign_in(web, key)
    for path in ("/batches/batch_nope", "/responses/resp_nope", "/webhooks/whep_nope",
                 "/files/file-nope/content"):  # fmt: skip
        answer = web.get("/console" + path)
        assert answer.status_code == 404
        assert "Not found" in answer.get_data(as_text=True)


def test_refusals(web: FlaskClient, db: Database) -> None:
    assert web.get("/console/batches").headers["Location"].startswith("/console/sign-in")
    token = _csrf(web, "/console/sign-in")
    wrong = web.post("/console/sign-in", data={"csrf_token": token, "api_key": "sk-wrong"})
    assert wrong.status_code == 401
    assert "Incorrect API key provided" in wrong.get_data(as_text=True)
    forged = web.post("/console/sign-in", data={"api_key": "sk-wrong"})
    assert forged.status_code == 403
    assert "CSRF token" in forged.get_data(as_text=True)
    # A forged token of any text is refused the same way, not a 500.
    for junk in ("é" * 43, "\u00ff\u4e00", "x" * 10_000):
        odd = web.post("/console/sign-out", data={"csrf_token": junk})
        assert odd.status_code == 403, junk

    member, _ = create_key(db, tenant="console-pages", name="member", role=MEMBER)
    _sign_in(web, member)
    assert web.get("/console/usage").status_code == 403
    assert web.get("/console/limits").status_code == 200
    assert web.get("/console/operator/").headers["Location"].startswith("/console/operator/")


def test_operator_pages(web: FlaskClient, db: Database) -> None:
    create_key(db, tenant="console-pages", name="pages", role=ADMIN)
    token = _csrf(web, "/console/operator/sign-in")
    answer = web.post("/console/operator/sign-in", data={"csrf_token": token,
                                                         "operator_token": TOKEN})  # fmt: skip
    assert answer.status_code == 302
    page = web.get("/console/operator/")
    assert page.status_code == 200, page.get_data(as_text=True)[:2000]
    assert "console-pages" in page.get_data(as_text=True)
    # Signing out ends the session in Redis too: the old cookie opens nothing.
    cookie = web.get_cookie("console_session", path="/console")
    assert cookie is not None
    web.post("/console/sign-out", data={"csrf_token": _csrf(web, "/console/operator/")})
    web.set_cookie("console_session", cookie.value, path="/console")
    after = web.get("/console/operator/")
    assert after.headers["Location"].startswith("/console/operator/sign-in")


def test_usage_page_shows_the_costs_api_total(
    web: FlaskClient, db: Database, settings: Settings
) -> None:
    from datetime import timedelta

    from sqlalchemy import func, insert

    from inference_platform.db.models import Batch, UsageRecord
    from tests.helpers import SIM

    key, info = create_key(db, tenant="console-costs", name="costs", role=ADMIN)
    batch = {
        "id": "batch_console_costs",
        "owner": "console-costs",
        "endpoint": "/v1/chat/completions",
        "input_file_id": "file-console-costs",
        "completion_window": "24h",
        "status": "completed",
        "total": 1,
        "priority": 2,
    }
    usage = {
        "owner": "console-costs",
        "model": SIM,
        "endpoint": "/v1/chat/completions",
        "input_tokens": 80,
        "output_tokens": 320,
        # A minute ago: the costs route counts up to the current second, not into it.
        "created_at": func.now() - timedelta(minutes=1),
    }
    with db.session() as s:
        s.execute(insert(Batch).values(**batch))
        for i, tier in enumerate(("realtime", "flex", "batch")):
            in_batch = batch["id"] if tier == "batch" else None
            s.execute(
                insert(UsageRecord).values(
                    request_id=f"console-costs-{i}", tier=tier, batch_id=in_batch, **usage
                )
            )
    _sign_in(web, key)
    page = web.get("/console/usage").get_data(as_text=True)
    shown = float(re.search(r'data-paid="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    start = (int(time.time()) // 86400 - 6) * 86400
    api = web.get(f"/v1/organization/costs?start_time={start}&limit=7",
                  headers={"Authorization": f"Bearer {key}"}).get_json()  # fmt: skip
    total = sum(r["amount"]["value"] for b in api["data"] for r in b["results"])
    assert shown == pytest.approx(total, rel=1e-9)
    # sim's tariffs (conftest): realtime 0.2/0.6, flex 0.1/0.3, batch 0.05/0.15 per million.
    assert total == pytest.approx((80 * 0.35 + 320 * 1.05) / 1e6, rel=1e-9)


def test_a_session_expires_by_its_lifetime(settings: Settings, db: Database) -> None:
    app = create_app(settings.replace(console_session_seconds=1))
    key, _ = create_key(db, tenant="console-pages", name="short", role=MEMBER)
    with app.test_client() as web:
        _sign_in(web, key)
        assert web.get("/console/batches").status_code == 200
        time.sleep(2.1)
        gone = web.get("/console/batches")
        assert gone.status_code == 302
        page = web.get(gone.headers["Location"]).get_data(as_text=True)
        assert "Your session has expired. Sign in again." in page
