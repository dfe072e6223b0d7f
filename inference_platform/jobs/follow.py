"""Following a job's event channel from the API: for streams and for blocking waits.

A waiter is woken by the job's own events (``XREAD BLOCK``), never by polling Postgres. Only
after a long silence does it look at the row once, so that a job finished by a process that
died before publishing its terminal event still releases its waiters.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from inference_platform.events import End, Event, Failed, Idle, Terminal, Usage, is_terminal
from inference_platform.jobs import store
from inference_platform.jobs.finish import seal
from inference_platform.platform import Platform

IDLE_CHECK_SECONDS = 15.0


def events(
    platform: Platform, request_id: str, *, timeout: float, after: str = "0"
) -> Iterator[Event]:
    """A job's channel events up to and including the terminal one.

    After each long silence it yields ``Idle()`` (streams turn it into a keep-alive,
    which also tells them when their client has gone). Raises TimeoutError when ``timeout``
    passes first.
    """
    deadline = time.monotonic() + timeout
    idle_since = time.monotonic()
    with platform.events.subscribe(request_id, after) as sub:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(request_id)
            batch = sub.get(min(left, 5.0))
            if not batch:
                if time.monotonic() - idle_since >= IDLE_CHECK_SECONDS:
                    idle_since = time.monotonic()
                    _check_finished(platform, request_id)
                    yield Idle()
                continue
            idle_since = time.monotonic()
            for _entry_id, event in batch:
                yield event
                if is_terminal(event):
                    return


def wait(platform: Platform, request_id: str, timeout: float) -> Event | None:
    """Block until the job ends: its terminal event, or None when ``timeout`` passed first."""
    last = None
    try:
        for event in events(platform, request_id, timeout=timeout):
            last = event
    except TimeoutError:
        return None
    return last


def terminal(platform: Platform, request_id: str) -> Terminal | None:
    """The job's terminal event if its channel has one (non-blocking)."""
    for event in platform.events.all_events(request_id):
        if isinstance(event, End | Failed):
            return event
    return None


def final_object(event: Terminal) -> dict[str, Any] | None:
    """The object a stopped job's terminal event carries (finished jobs: in the row)."""
    return event.result


def _check_finished(platform: Platform, request_id: str) -> None:
    row = store.load(platform, request_id)
    if row is None or row.status in store.RUNNING:
        return
    if row.status in store.STOPPED:
        seal(platform, request_id)  # publishes the missing terminal event
    else:
        # Completed, but its notice was lost with its worker: publish it now.
        platform.events.publish(request_id, End(_usage_of(row.result), status=row.status))


def _usage_of(result: dict[str, Any] | None) -> Usage:
    u = (result or {}).get("usage") or {}
    prompt = int(u.get("prompt_tokens", u.get("input_tokens", 0)))
    completion = int(u.get("completion_tokens", u.get("output_tokens", 0)))
    details = u.get("prompt_tokens_details") or u.get("input_tokens_details") or {}
    return Usage(prompt, completion, int(details.get("cached_tokens") or 0))
