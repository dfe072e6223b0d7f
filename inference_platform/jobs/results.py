"""The object a job's endpoint returns, built from what generation produced."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from inference_platform.db.models import Request
from inference_platform.generation import CHAT, COMPLETIONS, RESPONSES
from inference_platform.openai.endpoint import completion_object
from inference_platform.responses import objects
from inference_platform.tiers import reported_tier


@dataclass
class Outcome:
    """How a job ended: ``status`` completed | cancelled | failed | expired."""

    status: str
    texts: list[str] = field(default_factory=list)
    finish: list[str | None] = field(default_factory=list)
    prompt_tokens: int = 0
    output_tokens: int = 0
    produced: bool = True  # False: it ended before any output existed
    error: dict[str, Any] | None = None  # {"status", "message"} for failed/expired


def created_at(row: Request) -> int:
    return int(row.created_at.timestamp())


def build(row: Request, outcome: Outcome) -> dict[str, Any] | None:
    """The endpoint's object for ``row``; None when the endpoint has nothing to keep."""
    if row.endpoint == RESPONSES:
        return _response(row, outcome)
    if row.endpoint in (CHAT, COMPLETIONS) and outcome.status in ("completed", "cancelled"):
        return completion_object(
            row.endpoint,
            id=row.id,
            created=created_at(row),
            model=row.model,
            body=row.body,
            choices=list(zip(outcome.texts, outcome.finish, strict=True)),
            prompt_tokens=outcome.prompt_tokens,
            completion_tokens=outcome.output_tokens,
            service_tier=reported_tier(row.body.get("service_tier")),
        )
    return None


def _response(row: Request, outcome: Outcome) -> dict[str, Any]:
    error = None
    if outcome.error is not None:
        error = objects.response_error(outcome.error.get("status"), outcome.error["message"])
    started = outcome.produced
    return objects.finished(
        id=row.id,
        created_at=created_at(row),
        body=row.body,
        # A flex deadline that passed is a failure to the client, with its reason.
        status="failed" if outcome.status == "expired" else outcome.status,
        text=(outcome.texts[0] if outcome.texts else "") if started else None,
        input_tokens=outcome.prompt_tokens if started else None,
        output_tokens=outcome.output_tokens if started else None,
        finish_reason=outcome.finish[0] if outcome.finish else None,
        error=error,
    )


def job_status(result: dict[str, Any] | None, outcome: Outcome) -> str:
    """The row's status: a Response may have become ``incomplete``."""
    if result is not None and result.get("object") == "response":
        return str(result["status"])
    return outcome.status
