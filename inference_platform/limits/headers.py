"""OpenAI's rate-limit headers, so clients (and the SDK's retries) read them unchanged."""

from __future__ import annotations

import math

from inference_platform.errors import PlatformError
from inference_platform.limits.buckets import Budget, Decision


def duration(seconds: float) -> str:
    """OpenAI's reset format: ``20ms``, ``12s``, ``1m30s``, ``6m0s``."""
    if seconds < 1:
        return f"{max(math.ceil(seconds * 1000), 0)}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:.3f}".rstrip("0").rstrip(".")
    return f"{int(minutes)}m{text}s" if minutes else f"{text}s"


def _trio(kind: str, budget: Budget) -> dict[str, str]:
    if budget.limit <= 0:
        return {}
    return {
        f"x-ratelimit-limit-{kind}": str(budget.limit),
        f"x-ratelimit-remaining-{kind}": str(budget.remaining),
        f"x-ratelimit-reset-{kind}": duration(budget.reset_seconds),
    }


def ratelimit_headers(decision: Decision) -> dict[str, str]:
    return {**_trio("requests", decision.requests), **_trio("tokens", decision.tokens)}


def retry_headers(seconds: float) -> dict[str, str]:
    """``Retry-After`` in whole seconds (as HTTP wants) and ``retry-after-ms``, which the SDK
    prefers, so it waits no longer than it must."""
    seconds = max(seconds, 0.001)
    return {
        "Retry-After": str(math.ceil(seconds)),
        "retry-after-ms": str(math.ceil(seconds * 1000)),
    }


def refusal(decision: Decision, tenant: str, model: str) -> PlatformError:
    """The 429 for a refused request, in the OpenAI envelope, with every header."""
    headers = ratelimit_headers(decision)
    if decision.reason == "too_large":
        message = (
            f"Request too large for {model} on tenant {tenant}: it may use more tokens than the "
            f"limit of {decision.tokens.limit} tokens per minute. Lower max_tokens or the input."
        )
        headers["x-should-retry"] = "false"
    elif decision.reason == "concurrent":
        message = (
            f"Too many requests in flight for {model} on tenant {tenant}; try again when one "
            "finishes."
        )
        headers.update(retry_headers(decision.retry_after))
    else:
        budget = decision.requests if decision.reason == "requests" else decision.tokens
        message = (
            f"Rate limit reached for {model} on tenant {tenant}: {decision.reason} per minute "
            f"limit {budget.limit}, remaining {budget.remaining}. Please try again in "
            f"{duration(decision.retry_after)}."
        )
        headers.update(retry_headers(decision.retry_after))
    return PlatformError(429, message, code="rate_limit_exceeded", headers=headers)
