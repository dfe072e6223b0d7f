"""The web console refuses clearly: a second tenant sees none of the first tenant's objects
on any page and gets a 404 page for them by URL; a wrong key, an expired session, a form
without its CSRF token and a member key on an admin page are refused; the operator view
takes only the operator token. In a real browser, screenshots of the refusals and the
operator's page saved."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from inference_platform.db import Database
from inference_platform.keys import MEMBER, create_key, list_keys
from tests.e2e.console_support import OPERATOR_TOKEN, Console, Tab, browser, console, open_tab
from tests.helpers import SIM, SIM_SLOW, batch_finished, chat_line, finished, submit

pytestmark = pytest.mark.e2e
__all__ = ["browser", "console"]  # fixtures used by the tests below
PAGES = ("/batches", "/responses", "/usage", "/keys", "/limits", "/webhooks")


@pytest.fixture
def tab(browser: Any, console: Console) -> Iterator[Tab]:
    tab = open_tab(browser, console)
    yield tab
    tab.page.context.close()


@pytest.fixture(scope="module")
def first_tenant(console: Console, api_key: str, db: Database) -> dict[str, str]:
    """Objects of tenant A: a finished batch with its output file, a background response, a
    webhook endpoint, an API key."""
    sdk = console.sdk(api_key)
    batch = batch_finished(sdk, submit(sdk, [chat_line("a-1"), chat_line("a-2")]).id)
    response = sdk.responses.create(model=SIM, input="a", background=True, max_output_tokens=4)
    finished(sdk, response.id)
    hook = httpx.post(
        f"{console.api}/webhook_endpoints",
        json={"name": "a-hook", "url": "http://127.0.0.1:9/a", "event_types": ["batch.completed"]},
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=10,
    )
    hook.raise_for_status()
    key = next(k for k in list_keys(db) if k.tenant == "tenant-a" and k.revoked_at is None)
    return {
        "batch": batch.id,
        "output": batch.output_file_id,
        "response": response.id,
        "hook": hook.json()["id"],
        "key": key.id,
    }


def _refused(tab: Tab, path: str, status: int, text: str) -> None:
    answer = tab.go(path)
    assert answer.status == status, (path, answer.status)
    assert text in tab.text(), tab.text()


def test_a_second_tenant_sees_none_of_the_first_tenants_objects(
    tab: Tab, other_key: str, first_tenant: dict[str, str], api_key: str
) -> None:
    tab.sign_in(other_key)
    for path in PAGES:
        tab.go(path)
        html = tab.page.content()
        for name, object_id in first_tenant.items():
            assert object_id not in html, (path, name)
    assert tab.errors == []

    # By URL: a 404 page that says so, as the API's 404.
    _refused(tab, f"/batches/{first_tenant['batch']}", 404, "No batch found with id")
    tab.shot("refused-other-tenant")
    _refused(tab, f"/responses/{first_tenant['response']}", 404, "No response found with id")
    _refused(tab, f"/webhooks/{first_tenant['hook']}", 404, "No webhook endpoint found")
    _refused(tab, f"/files/{first_tenant['output']}/content", 404, "No such File object")
    # A form of its own session (a valid CSRF token) aimed at A's key changes nothing.
    tab.go("/keys")
    token = tab.page.get_attribute("input[name=csrf_token]", "value")
    forged = tab.page.context.request.post(
        tab.console.url(f"/keys/{first_tenant['key']}/revoke"),
        form={"csrf_token": token},
        max_redirects=0,
    )
    assert forged.status == 302
    tab.go("/keys")
    assert f"No API key found with id '{first_tenant['key']}'" in tab.text()
    assert tab.console.sdk(api_key).models.list().data  # A's key still works


def test_a_wrong_key_is_refused(tab: Tab) -> None:
    tab.sign_in("sk-not-a-real-key")
    assert tab.page.url.endswith("/console/sign-in")
    assert "Incorrect API key provided: sk-not…" in tab.text()
    tab.shot("refused-wrong-key")
    answer = tab.go("/batches")  # still not signed in
    assert tab.page.url.startswith(tab.console.url("/sign-in"))
    assert answer.status == 200


def test_an_expired_session_is_refused(tab: Tab, api_key: str, console: Console) -> None:
    sdk = console.sdk(api_key)
    batch = submit(sdk, [chat_line(f"e-{i}", model=SIM_SLOW, max_tokens=200) for i in range(8)])
    tab.sign_in(api_key)
    tab.go(f"/batches/{batch.id}")  # a page that refreshes itself while the batch runs
    assert tab.page.get_attribute("#live", "data-refresh")
    # What the session's time-to-live does, done now: Redis forgets it.
    assert redis.Redis.from_url(console.settings.redis_url).delete(tab.session_key()) == 1
    tab.page.wait_for_url(console.url("/sign-in") + "**", timeout=15_000)
    assert "Your session has expired. Sign in again." in tab.text()
    tab.shot("refused-expired-session")
    sdk.batches.cancel(batch.id)
    tab.go(f"/batches/{batch.id}")  # and any page asked for afterwards
    assert tab.page.url.startswith(console.url("/sign-in"))
    assert tab.script_errors() == []


def test_a_form_without_its_csrf_token_is_refused(tab: Tab, api_key: str, db: Database) -> None:
    tab.sign_in(api_key)
    before = len(list_keys(db))
    for form in ({"name": "forged", "role": "admin"}, {"name": "forged", "role": "admin",
                                                       "csrf_token": "guessed"}):  # fmt: skip
        answer = tab.page.context.request.post(tab.console.url("/keys"), form=form)
        assert answer.status == 403
        assert "CSRF token" in answer.text()
    assert len(list_keys(db)) == before
    # And as a page: a form another site would post, without the token.
    tab.page.set_content(
        f"<form method=post action='{tab.console.url('/keys')}'>"
        "<input name=name value=forged><input name=role value=admin></form>"
    )
    with tab.page.expect_navigation():
        tab.page.eval_on_selector("form", "f => f.submit()")
    assert "Form refused" in tab.text()
    tab.shot("refused-csrf")
    assert len(list_keys(db)) == before


def test_a_member_key_gets_no_admin_page(tab: Tab, db: Database) -> None:
    key, _ = create_key(db, tenant="tenant-a", name="console member", role=MEMBER)
    tab.sign_in(key)
    assert tab.page.url == tab.console.url("/batches")
    for path in ("/usage", "/keys", "/webhooks"):
        _refused(tab, path, 403, "needs a session signed in with an admin API key")
    tab.go("/limits")
    assert "every model" in tab.text()


def test_the_operator_view_takes_the_operator_token_only(
    tab: Tab, api_key: str, console: Console
) -> None:
    tab.sign_in(api_key)
    tab.go("/operator/")  # a tenant session is no operator session
    assert tab.page.url.startswith(console.url("/operator/sign-in"))
    for sent, why in ((api_key, "That is a tenant's API key"), ("nope", "not the operator token")):
        tab.page.fill("input[name=operator_token]", sent)
        tab.page.click(".sign-in button[type=submit]")
        assert why in tab.text()
    tab.page.fill("input[name=operator_token]", OPERATOR_TOKEN)
    tab.page.click(".sign-in button[type=submit]")
    assert tab.page.url == console.url("/operator/")
    queues = tab.page.inner_text("#queues")
    for model in (SIM, "demo-tiny", "no-workers"):
        assert model in queues
    assert tab.page.locator("tr[data-queue='batch.sim'] td").nth(6).inner_text() != "0"
    assert tab.page.locator("tr[data-queue='realtime.no-workers'] td").nth(6).inner_text() == "0"
    assert "simulated" in tab.page.inner_text("#workers")
    assert "tenant-a" in tab.page.inner_text("#tenants")
    # The first tenant's batches ended inside their window: kept deadlines, per model.
    deadlines = tab.page.locator("#deadlines tr", has_text="batch")
    assert deadlines.count() >= 1 and "100.0%" in deadlines.first.inner_text()
    assert tab.page.get_attribute("text=/metrics", "href") == "/metrics"
    assert tab.page.get_attribute("text=Flower", "href") == (
        f"http://127.0.0.1:{console.settings.flower_port}/"
    )
    tab.shot("operator")
    tab.go("/batches")  # and an operator session is no tenant session
    assert tab.page.url.startswith(console.url("/sign-in"))
    assert tab.script_errors() == []
