"""What the web console tests share: an API process of their own (the session's workers do
the work) with the operator view on, a headless Chromium, a page that records every browser
console error, screenshots, and signing in."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import pytest

from inference_platform.settings import Settings
from tests.stack import ROOT, Stack, free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update"]  # fmt: skip
OPERATOR_TOKEN = "operator-secret-for-tests"
# Screenshots of every page land here (CONSOLE_SCREENSHOTS overrides it).
SHOTS = Path(os.environ.get("CONSOLE_SCREENSHOTS", ROOT / "var" / "test-output" / "console"))


@dataclass
class Console:
    base: str  # http://127.0.0.1:PORT
    settings: Settings

    @property
    def api(self) -> str:
        return self.base + "/v1"

    def url(self, path: str) -> str:
        return self.base + "/console" + path

    def sdk(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.api, api_key=key, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def console(stack: Stack, settings: Settings, var_dir: Path) -> Iterator[Console]:
    """A second API process on the session's database, Redis and workers."""
    own = settings.replace(port=free_port(), console_operator_token=OPERATOR_TOKEN)
    api = Stack(own, var_dir / "logs")
    api.start(f"console-web-{own.port}", ["web"])
    try:
        api.wait_api()
        yield Console(f"http://127.0.0.1:{own.port}", own)
    finally:
        api.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Tab:
    """One browser context (its own cookies) with one page, and what its console logged."""

    console: Console
    page: Any
    errors: list[str] = field(default_factory=list)

    def go(self, path: str) -> Any:
        return self.page.goto(self.console.url(path))

    def shot(self, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def sign_in(self, key: str) -> None:
        self.go("/sign-in")
        self.page.fill("input[name=api_key]", key)
        self.page.click(".sign-in button[type=submit]")
        self.page.wait_for_load_state()

    def cookie(self) -> dict[str, Any]:
        found = [c for c in self.page.context.cookies() if c["name"] == "console_session"]
        assert len(found) == 1, found
        return dict(found[0])

    def session_key(self) -> str:
        """The Redis key of this tab's session (the cookie's hash)."""
        return "console:session:" + hashlib.sha256(self.cookie()["value"].encode()).hexdigest()

    def script_errors(self) -> list[str]:
        """Console errors but the browser's note on each refusal page's own status (a 401,
        403 or 404 these tests asked for)."""
        refused = "Failed to load resource: the server responded with a status of 40"
        return [e for e in self.errors if not e.startswith(refused)]

    def text(self) -> str:
        return str(self.page.inner_text("main"))


def open_tab(browser: Any, console: Console, width: int = 1280, height: int = 800) -> Tab:
    context = browser.new_context(
        accept_downloads=True, viewport={"width": width, "height": height}
    )
    page = context.new_page()
    tab = Tab(console, page)
    page.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: tab.errors.append(str(e)))
    return tab
