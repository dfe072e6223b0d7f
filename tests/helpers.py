"""Small helpers shared by the tests: one way to wait for a condition, and the objects the
end-to-end tests build and read back. Nothing here imports the test fixtures, so the process
launcher (tests/stack.py) and conftest.py can both use it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import openai
from sqlalchemy import select

from inference_platform.db.models import Request, UsageRecord

T = TypeVar("T")

# The models of the test catalog (conftest.catalog_json).
DEMO = "demo-tiny"
SIM = "sim"  # simulated engine, fast
SIM_SLOW = "sim-slow"  # simulated engine, slow enough to cancel or kill mid-generation
SIM_WIDE = "sim-wide"  # simulated engine at a steady pace with a wide batch: many open streams
SIM_CAPACITY = "sim-capacity"  # simulated engine at a known 1,000 tokens/s (deadline tests)


def eventually(
    fn: Callable[[], T],
    done: Callable[[T], object] = bool,
    timeout: float = 30,
    *,
    interval: float = 0.1,
    ignoring: tuple[type[BaseException], ...] = (),
    what: str = "",
) -> T:
    """Call ``fn`` until ``done`` holds for its value and return that value.

    Tests wait on a condition rather than sleeping a guessed time. An exception of a type in
    ``ignoring`` counts as "not yet" (a server still starting); past ``timeout`` the test fails
    with the last value seen.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value: T | BaseException = fn()
        except ignoring as exc:
            value = exc
        else:
            if done(value):
                return value
        if time.monotonic() > deadline:
            waiting = f" waiting for {what}" if what else ""
            raise AssertionError(f"timed out after {timeout:g}s{waiting}; last value: {value!r}")
        time.sleep(interval)


def finished(client: openai.OpenAI, response_id: str, timeout: float = 30) -> Any:
    """A background response once it is no longer queued or in progress."""
    return eventually(
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


# -- batches ---------------------------------------------------------------------------

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
TERMINAL = ("completed", "failed", "expired", "cancelled")


def chat_line(custom_id: str, model: str = SIM, max_tokens: int = 8, **extra: Any) -> dict:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": CHAT,
        "body": {
            "model": model,
            "messages": [{"role": "user", "content": f"say {custom_id}"}],
            "max_tokens": max_tokens,
            **extra,
        },
    }


def jsonl(lines: list[Any]) -> bytes:
    return b"".join((x if isinstance(x, bytes) else json.dumps(x).encode()) + b"\n" for x in lines)


def submit(
    client: openai.OpenAI, lines: list[Any], *, endpoint: str = CHAT, window: str = "24h", **kw: Any
) -> Any:
    f = client.files.create(file=("batch.jsonl", jsonl(lines)), purpose="batch")
    return client.batches.create(
        input_file_id=f.id,
        endpoint=endpoint,  # type: ignore[arg-type]
        completion_window=window,
        **kw,
    )  # type: ignore[arg-type]


def wait_for(
    client: openai.OpenAI, batch_id: str, done: Callable[[Any], bool], timeout: float = 60
) -> Any:
    """A batch once ``done`` holds for it."""
    return eventually(
        lambda: client.batches.retrieve(batch_id), done, timeout, interval=0.25, what="a batch"
    )


def batch_finished(client: openai.OpenAI, batch_id: str, timeout: float = 60) -> Any:
    return wait_for(client, batch_id, lambda b: b.status in TERMINAL, timeout)


def lines_of(client: openai.OpenAI, file_id: str | None) -> list[dict]:
    if file_id is None:
        return []
    return [json.loads(x) for x in client.files.content(file_id).text.splitlines()]
