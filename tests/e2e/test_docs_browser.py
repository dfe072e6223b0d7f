"""A browser opens ``/docs/`` on the running API and finds every route listed.

Headless Chromium from the system (Debian's ``chromium``) driven by Playwright; Playwright's
own browser downloads are not used (this test machine may be offline).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.stack import Stack

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


def _browser_or_skip() -> Any:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    return sync_playwright


def test_docs_page_lists_every_route(stack: Stack) -> None:
    sync_playwright = _browser_or_skip()
    base = f"http://127.0.0.1:{stack.settings.port}"
    spec = httpx.get(f"{base}/openapi.json", timeout=10).json()
    expected = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{base}/docs/")
            page.wait_for_selector(".opblock-summary-path", timeout=30_000)
            shown = page.eval_on_selector_all(
                ".opblock-summary",
                "els => els.map(e => [e.querySelector('.opblock-summary-method').textContent,"
                " e.querySelector('.opblock-summary-path').getAttribute('data-path')])",
            )
        finally:
            browser.close()
    assert {(m.upper(), path) for m, path in shown} == expected
