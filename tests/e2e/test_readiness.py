"""Liveness and readiness told apart: ``/health`` is cheap, ``/ready`` names what is missing."""

from __future__ import annotations

import httpx
import pytest

from tests.stack import Stack

pytestmark = pytest.mark.e2e


def test_ready_names_the_model_without_workers(stack: Stack) -> None:
    root = stack.base_url.removesuffix("/v1")
    assert httpx.get(f"{root}/health", timeout=10).status_code == 200
    r = httpx.get(f"{root}/ready", timeout=10)
    # The test catalog has a model no worker ever serves; every other model is ready.
    assert r.status_code == 503 and r.headers["Retry-After"]
    body = r.json()
    assert body["error"]["code"] == "not_ready" and "no-workers" in body["error"]["message"]
    assert body["missing"]["no-workers"] == ["realtime", "flex", "batch"]
    assert "sim" not in body["missing"] and "demo-tiny" not in body["missing"]
