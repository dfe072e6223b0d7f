"""The object a job's endpoint returns, built from what generation produced.

The durable core builds finished objects only through this module; the objects themselves
come from the endpoint families' protocol modules, as for every other tier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from inference_platform.db.models import Request
from inference_platform.endpoints.chat_completions.protocol import chat_completion
from inference_platform.endpoints.completions.protocol import text_completion
from inference_platform.endpoints.responses import protocol as responses
from inference_platform.engines.base import TokenLogprob
from inference_platform.events import Usage
from inference_platform.generation import CHAT, COMPLETIONS, RESPONSES
from inference_platform.tiers import reported_tier


@dataclass
class Outcome:
    """How a job ended: ``status`` completed | cancelled | failed | expired."""

    status: str
    texts: list[str] = field(default_factory=list)
    finish: list[str | None] = field(default_factory=list)
    # Per choice, its tokens' log probabilities (used when the request asked for them).
    logprobs: list[list[TokenLogprob]] = field(default_factory=list)
    prompt_tokens: int = 0
    output_tokens: int = 0
    # Of ``prompt_tokens``, those the engine's prefix cache served.
    cached_tokens: int = 0
    produced: bool = True  # False: it ended before any output existed
    error: dict[str, Any] | None = None  # {"status", "message"} for failed/expired


def created_at(row: Request) -> int:
    return int(row.created_at.timestamp())


def build(row: Request, outcome: Outcome) -> dict[str, Any] | None:
    """The endpoint's object for ``row``; None when the endpoint has nothing to keep."""
    if row.endpoint == RESPONSES:
        return _response(row, outcome)
    if outcome.status not in ("completed", "cancelled"):
        return None
    choices = list(zip(outcome.texts, outcome.finish, strict=True))
    usage = Usage(outcome.prompt_tokens, outcome.output_tokens, outcome.cached_tokens)
    tier = reported_tier(row.body.get("service_tier"))
    if row.endpoint == CHAT:
        return dict(
            chat_completion(
                id=row.id,
                created=created_at(row),
                model=row.model,
                choices=choices,
                usage=usage,
                service_tier=tier,
                body=row.body,  # a forced tool call becomes tool_calls
                logprobs=outcome.logprobs,
            )
        )
    if row.endpoint == COMPLETIONS:
        return dict(
            text_completion(
                id=row.id,
                created=created_at(row),
                model=row.model,
                body=row.body,
                choices=choices,
                usage=usage,
                service_tier=tier,
                logprobs=outcome.logprobs,
            )
        )
    return None


def _response(row: Request, outcome: Outcome) -> dict[str, Any]:
    error = None
    if outcome.error is not None:
        error = responses.response_error(outcome.error.get("status"), outcome.error["message"])
    started = outcome.produced
    return responses.finished(
        id=row.id,
        created_at=created_at(row),
        body=row.body,
        # A flex deadline that passed is a failure to the client, with its reason.
        status="failed" if outcome.status == "expired" else outcome.status,
        text=(outcome.texts[0] if outcome.texts else "") if started else None,
        input_tokens=outcome.prompt_tokens if started else None,
        output_tokens=outcome.output_tokens if started else None,
        cached_tokens=outcome.cached_tokens,
        finish_reason=outcome.finish[0] if outcome.finish else None,
        error=error,
    )


def job_status(result: dict[str, Any] | None, outcome: Outcome) -> str:
    """The row's status: a Response may have become ``incomplete``."""
    if result is not None and result.get("object") == "response":
        return str(result["status"])
    return outcome.status
