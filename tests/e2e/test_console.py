"""The web console in a real browser (headless Chromium driven by Playwright): a tenant signs
in with an API key, watches a batch submitted through the SDK reach 100%, downloads its
output, follows flex work, reads usage and savings, makes and revokes a key, and manages a
webhook endpoint; no page logs a browser console error. Every page is screenshotted."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.console_support import Console, Tab, browser, console, open_tab
from tests.helpers import (
    SIM,
    SIM_SLOW,
    batch_finished,
    chat_line,
    eventually,
    lines_of,
    submit,
)

pytestmark = pytest.mark.e2e
__all__ = ["browser", "console"]  # fixtures used by the tests below


@pytest.fixture(scope="module")
def tab(browser: Any, console: Console, api_key: str) -> Iterator[Tab]:
    """Tenant A, signed in with its admin key, for the whole module."""
    tab = open_tab(browser, console)
    tab.sign_in(api_key)
    yield tab
    tab.page.context.close()


def test_sign_in_sets_a_server_side_session_cookie(tab: Tab, api_key: str) -> None:
    assert tab.page.url == tab.console.url("/batches")
    cookie = tab.cookie()
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/console"
    # The browser keeps a random id, never the key.
    assert api_key not in json.dumps(tab.page.context.storage_state())
    assert api_key not in tab.page.content()
    assert tab.errors == []


def test_a_batch_reaches_100_percent_and_its_output_downloads(
    tab: Tab, console: Console, api_key: str
) -> None:
    sdk = console.sdk(api_key)
    lines = [chat_line(f"line-{i}", model=SIM_SLOW, max_tokens=30) for i in range(12)]
    batch = submit(sdk, lines)
    tab.go(f"/batches/{batch.id}")
    seen: list[int] = []

    def percent() -> int:
        value = int(tab.page.get_attribute(".big-bar progress", "data-percent") or 0)
        if not seen or seen[-1] != value:
            seen.append(value)
            if 0 < value < 100 and len([p for p in seen if 0 < p < 100]) == 1:
                tab.shot("batch-running")
        return value

    # The page updates itself while the batch runs: the test never reloads it.
    eventually(percent, lambda p: p == 100, timeout=90, interval=0.2, what="100%")
    tab.page.wait_for_selector(".summary .status-completed")
    assert seen[0] < 100, seen
    bar = tab.page.locator(".big-bar progress")
    assert bar.get_attribute("value") == bar.get_attribute("max") == "12"
    tab.shot("batch")

    with tab.page.expect_download() as download:
        tab.page.click("text=Download output")
    rows = [json.loads(x) for x in Path(download.value.path()).read_text().splitlines()]
    # The same file as the API serves it.
    assert rows == lines_of(sdk, sdk.batches.retrieve(batch.id).output_file_id)
    assert sorted(r["custom_id"] for r in rows) == sorted(x["custom_id"] for x in lines)
    assert all(r["response"]["status_code"] == 200 for r in rows)

    tab.go("/batches")
    row = tab.page.locator(f"tr[data-batch='{batch.id}']")
    assert "completed" in row.inner_text()
    assert row.locator("progress").get_attribute("data-percent") == "100"
    tab.shot("batches")
    assert tab.errors == []


def test_cancel_shows_the_failed_lines_and_retry_makes_a_batch_of_them(
    tab: Tab, console: Console, api_key: str
) -> None:
    sdk = console.sdk(api_key)
    lines = [chat_line(f"c-{i}", model=SIM_SLOW, max_tokens=100) for i in range(12)]
    batch = submit(sdk, lines)
    tab.go(f"/batches/{batch.id}")
    tab.page.wait_for_selector(".summary .status-in_progress", timeout=30_000)
    tab.page.click("text=Cancel batch")
    assert "Cancelling" in tab.page.inner_text(".flash")
    # The page follows the batch to its end by itself.
    tab.page.wait_for_selector(".summary .status-cancelled", timeout=60_000)
    failed = tab.page.inner_text("h2:text('Failed lines') + table")
    assert "batch_cancelled" in failed
    tab.shot("batch-cancelled")

    tab.page.click("text=Retry failed lines")
    tab.page.wait_for_selector(".flash")
    assert f"Retrying the failed lines of {batch.id}" in tab.text()
    retried = tab.page.url.rsplit("/", 1)[1]
    assert retried != batch.id
    again = sdk.batches.retrieve(retried)
    assert (again.metadata or {}).get("retry_of") == batch.id
    sdk.batches.cancel(retried)
    assert tab.errors == []


def test_flex_and_background_responses_are_listed_with_their_result(
    tab: Tab, console: Console, api_key: str
) -> None:
    sdk = console.sdk(api_key)
    made = sdk.responses.create(
        model=SIM, input="hello there", service_tier="flex", background=True, max_output_tokens=12
    )
    tab.go("/responses")
    row = tab.page.locator(f"tr[data-response='{made.id}']")
    ended = ("completed", "incomplete")  # max_output_tokens reached: incomplete
    eventually(row.inner_text, lambda t: any(e in t for e in ended), timeout=30, what="the end")
    assert "flex" in row.inner_text()
    tab.shot("responses")
    row.locator("a").click()
    tab.page.wait_for_selector("pre.output")
    assert sdk.responses.retrieve(made.id).output_text in tab.text()
    tab.shot("response")
    assert tab.errors == []


def _costs_api(console: Console, key: str, start: int) -> float:
    got = httpx.get(
        f"{console.api}/organization/costs",
        params={"start_time": start, "limit": 7},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    got.raise_for_status()
    return sum(r["amount"]["value"] for b in got.json()["data"] for r in b["results"])


def _batch_requests(console: Console, key: str, start: int) -> int:
    got = httpx.get(
        f"{console.api}/organization/usage/completions",
        params={"start_time": start, "limit": 7, "batch": "true", "models": SIM},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    got.raise_for_status()
    return sum(r["num_model_requests"] for b in got.json()["data"] for r in b["results"])


def test_usage_shows_the_costs_api_figures_and_the_saving(
    tab: Tab, console: Console, api_key: str
) -> None:
    sdk = console.sdk(api_key)
    sdk.chat.completions.create(model=SIM, messages=[{"role": "user", "content": "hi"}])
    batch = submit(sdk, [chat_line(f"u-{i}", max_tokens=16) for i in range(20)])
    assert batch_finished(sdk, batch.id).status == "completed"
    start = (int(time.time()) // 86400 - 6) * 86400
    # Usage rows may land a little after the batch ends: wait for all 20 lines'.
    eventually(
        lambda: _batch_requests(console, api_key, start), lambda n: n >= 20, what="usage rows"
    )

    def figures() -> tuple[float, float, float]:
        """The API's total, the page's, and the API's again (usage may still be arriving)."""
        before = _costs_api(console, api_key, start)
        tab.go("/usage")
        shown = float(tab.page.get_attribute("[data-paid]", "data-paid") or "nan")
        return before, shown, _costs_api(console, api_key, start)

    before, shown, after = eventually(
        figures, lambda f: f[0] == f[2] > 0, timeout=30, interval=1, what="settled usage"
    )
    items = httpx.get(
        f"{console.api}/organization/costs",
        params={"start_time": start, "limit": 7, "group_by": "line_item"},
        headers={"Authorization": f"Bearer {api_key}"},
    ).json()
    assert shown == pytest.approx(before, rel=1e-6), (items, tab.page.inner_text("table.list"))
    assert "saved" in tab.text()
    assert tab.page.locator("figure.chart svg rect").count() >= 3
    table = tab.page.inner_text("table.list")
    for tier in ("realtime", "flex", "batch 24h"):
        assert tier in table
    tab.shot("usage")
    assert tab.errors == []


def test_a_key_is_shown_once_and_can_be_revoked(tab: Tab, console: Console) -> None:
    tab.go("/keys")
    tab.page.fill("input[name=name]", "made in the console")
    tab.page.select_option("select[name=role]", "member")
    tab.page.click("form.inline button[type=submit]")
    key = tab.page.inner_text("#new-key-value").strip()
    assert key.startswith("sk-")
    assert console.sdk(key).models.list().data
    tab.shot("keys")

    tab.go("/keys")
    assert key not in tab.page.content()
    row = tab.page.locator("tr", has_text="made in the console")
    key_id = row.get_attribute("data-key")
    row.locator("button", has_text="Revoke").click()
    tab.page.wait_for_selector(".flash")
    assert "Revoked" in tab.text() and str(key_id) in tab.text()

    def refused() -> bool:
        try:
            console.sdk(key).models.list()
        except openai.AuthenticationError:
            return True
        return False

    eventually(refused, timeout=10, what="the revoked key to be refused")
    assert tab.errors == []


class _Receiver(BaseHTTPRequestHandler):
    got: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server hook's name
        self.got.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_limits_and_a_webhook_endpoint(tab: Tab, console: Console, api_key: str) -> None:
    tab.go("/limits")
    for model in (SIM, SIM_SLOW):
        assert model in tab.text()
    tab.shot("limits")

    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        tab.go("/webhooks")
        tab.page.fill("input[name=name]", "console hook")
        tab.page.fill("input[name=url]", f"http://127.0.0.1:{server.server_port}/hook")
        tab.page.check("input[value='batch.completed']")
        tab.page.click("form.stacked button[type=submit]")
        first = tab.page.inner_text("#signing-secret").strip()
        assert first.startswith("whsec_")
        tab.shot("webhooks")

        tab.page.locator("tr[data-endpoint] a", has_text="console hook").click()
        endpoint = tab.page.url
        tab.page.select_option("select[name=event_type]", "batch.completed")
        tab.page.click("text=Send test event")
        tab.page.wait_for_selector(".flash")
        assert "answered 200" in tab.text()
        assert b"batch.completed" in _Receiver.got[-1]

        tab.page.click("text=Rotate secret")
        second = tab.page.inner_text("#signing-secret").strip()
        assert second.startswith("whsec_") and second != first

        # A batch that ends is delivered to the endpoint and listed among its deliveries.
        sdk = console.sdk(api_key)
        done = batch_finished(sdk, submit(sdk, [chat_line("hooked")]).id)

        def delivery() -> str:
            tab.page.goto(endpoint)
            row = tab.page.locator("tr", has_text=done.id)
            return str(row.locator(".status").inner_text()) if row.count() else ""

        eventually(delivery, lambda status: status == "delivered", timeout=30, interval=1)
        assert any(done.id.encode() in body for body in _Receiver.got)
        tab.shot("webhook")
    finally:
        server.shutdown()
        server.server_close()
    assert tab.errors == []


def test_a_phone_width_screen_scrolls_tables_not_the_page(
    browser: Any, console: Console, api_key: str
) -> None:
    phone = open_tab(browser, console, width=390, height=844)
    try:
        phone.sign_in(api_key)
        for path in ("/batches", "/usage", "/keys"):
            phone.go(path)
            # The page is as wide as the screen; a wide table scrolls inside itself.
            width = phone.page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, (path, width)
        phone.go("/batches")
        phone.shot("phone-batches")
        assert phone.script_errors() == []
    finally:
        phone.page.context.close()
