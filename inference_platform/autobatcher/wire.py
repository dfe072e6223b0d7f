"""What the autobatcher reads from the SDK's request options and hands back to it.

The client intercepts at ``AsyncOpenAI.request``, after the SDK has turned the caller's keyword
arguments into a JSON body, so it sees exactly what a direct call would send. An answer comes
back as a ``LineResult`` (a status code and a JSON body, as in a batch output line) and goes
through the SDK's own response processing, so the caller gets the same typed object or the same
exception class a direct call gives.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import openai
from openai._models import FinalRequestOptions

# SDK paths (relative to base_url) the autobatcher takes over, and the Batch API endpoint of each.
CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
RESPONSES = "/v1/responses"
ROUTES = {"/chat/completions": CHAT, "/completions": COMPLETIONS, "/responses": RESPONSES}

T = TypeVar("T")


@dataclass(frozen=True)
class LineResult:
    """One request's HTTP answer: an API object (2xx) or an error envelope."""

    status_code: int
    body: Any
    request_id: str | None = None


def route_of(options: FinalRequestOptions) -> str | None:
    """The batch endpoint of a request the autobatcher takes, or None to pass it through."""
    if options.method.lower() != "post" or not isinstance(options.url, str):
        return None
    return ROUTES.get(options.url)


def body_of(options: FinalRequestOptions) -> dict[str, Any]:
    """The JSON body a direct call would send: the SDK's params with ``extra_body`` on top."""
    body = dict(options.json_data) if isinstance(options.json_data, dict) else {}
    if isinstance(options.extra_json, dict):
        body.update(options.extra_json)
    return body


def retry_after(exc: openai.APIStatusError, default: float) -> float:
    """Seconds to wait before retrying, from ``retry-after-ms`` or ``Retry-After``."""
    headers = exc.response.headers
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return default
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return default


def should_retry(exc: openai.APIStatusError) -> bool:
    """False when the server said the request can never succeed as sent
    (``x-should-retry: false``, e.g. a request larger than any per-minute budget)."""
    return str(exc.response.headers.get("x-should-retry", "")).lower() != "false"


async def retry_rate_limits(
    call: Callable[[], Awaitable[T]],
    *,
    max_retries: int,
    default_wait: float,
    on_wait: Callable[[float], None] | None = None,
) -> T:
    """``call()``, again after a 429 once its ``Retry-After`` has passed, at most
    ``max_retries`` times (the client's own setting, counted as the SDK counts it).

    A batch upload or flex job that meets a full queue waits as long as the server asks, a
    few times over; a 429 the server marks ``x-should-retry: false`` raises at once, so a
    request that can never run fails its own caller and never holds it forever."""
    retries = 0
    while True:
        try:
            return await call()
        except openai.RateLimitError as exc:
            if retries >= max_retries or not should_retry(exc):
                raise
            retries += 1
            wait = retry_after(exc, default_wait)
            if on_wait is not None:
                on_wait(wait)
            await asyncio.sleep(wait)
