"""`inference-platform up` (what `make run` starts) prints the web console's URL and an
operator token; a new user signs in there with the banner's key, the operator with its token."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.e2e.test_up import MODELS, up_stack
from tests.stack import Stack

pytestmark = pytest.mark.e2e
__all__ = ["up_stack"]  # the fixture the test below uses


def _csrf(client: httpx.Client, url: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).text)
    assert found, url
    return found.group(1)


def test_the_banner_console_url_signs_in_with_the_banner_key(up_stack: tuple[Stack, str]) -> None:
    stack, _ = up_stack
    log = stack.log("up")
    console = re.search(r"Web console\s*: (\S+)", log)
    key = re.search(r"API key\s*: (sk-\S+)", log)
    operator = re.search(r"Operator view\s*: (\S+) \(operator token (\S+)\)", log)
    assert console and key and operator, log[-3000:]
    assert log.index("Web console") < log.index("Ready:")

    with httpx.Client(timeout=10) as tenant:
        sign_in = console.group(1) + "sign-in"
        answer = tenant.post(
            sign_in, data={"csrf_token": _csrf(tenant, sign_in), "api_key": key.group(1)}
        )
        assert answer.status_code == 302, answer.text
        page = tenant.get(console.group(1) + "batches")
        assert page.status_code == 200 and "No batches yet" in page.text

    with httpx.Client(timeout=10) as op:
        sign_in = operator.group(1) + "sign-in"
        token = operator.group(2)
        answer = op.post(sign_in, data={"csrf_token": _csrf(op, sign_in), "operator_token": token})
        assert answer.status_code == 302, answer.text
        page = op.get(operator.group(1))
        assert page.status_code == 200
        for name in MODELS:
            assert f'data-queue="realtime.{name}"' in page.text
