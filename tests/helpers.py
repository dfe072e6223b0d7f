"""Small helpers shared by the end-to-end tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import openai
from sqlalchemy import select

from inference_platform.db.models import Request, UsageRecord


def poll(fn: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 30) -> Any:
    """Call ``fn`` until ``done`` holds for its value; fail the test past ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s; last value: {value!r}")
        time.sleep(0.1)


def finished(client: openai.OpenAI, response_id: str, timeout: float = 30) -> Any:
    """A background response once it is no longer queued or in progress."""
    return poll(
        lambda: client.responses.retrieve(response_id),
        lambda r: r.status not in ("queued", "in_progress"),
        timeout,
    )


def usage_rows(db: Any, request_id: str) -> list[UsageRecord]:
    with db.session() as s:
        return list(s.scalars(select(UsageRecord).where(UsageRecord.request_id == request_id)))


def job(db: Any, request_id: str) -> Request:
    with db.session() as s:
        row = s.get(Request, request_id)
    assert row is not None
    return row
