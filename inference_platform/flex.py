"""The flex tier on the API side: admission with back-pressure, and waiting for results.

Every flex request is a durable job (``jobs``) on ``flex.<model>`` with the flex deadline. A
client that does not ask for background mode blocks until its job ends; it is woken by the
job's terminal event on the event channel (``XREAD BLOCK``), not by polling Postgres.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from inference_platform import jobs, realtime
from inference_platform.capacity import admission
from inference_platform.capacity.model import work_units
from inference_platform.db.models import Request
from inference_platform.errors import PlatformError
from inference_platform.events import Event, Failed, Idle, Started
from inference_platform.generation import output_limit
from inference_platform.jobs import store
from inference_platform.jobs.follow import events, wait
from inference_platform.platform import Platform
from inference_platform.tiers import FLEX


def admit(platform: Platform, model: str, endpoint: str, body: dict[str, Any]) -> None:
    """429 with ``Retry-After`` when the model's flex queue is full or the work ahead of this
    request would not let it finish inside the flex window (the SDK retries)."""
    _admit_queue_length(platform, model)
    admission.admit_flex(platform, model, request_work(platform, endpoint, body))


def request_work(platform: Platform, endpoint: str, body: dict[str, Any]) -> float:
    """A flex request's work: its output limit (or the default) per choice, and its prompt
    estimated from the text."""
    prompt = sum(len(str(body.get(f) or "")) for f in ("messages", "prompt", "input")) / 4
    return work_units(prompt, _output_tokens(platform, endpoint, body))


def _output_tokens(platform: Platform, endpoint: str, body: dict[str, Any]) -> int:
    """The most tokens the request may generate, all choices together."""
    limit = output_limit(endpoint, body)
    output = platform.settings.default_max_tokens if limit is None else limit
    return output * max(1, int(body.get("n") or 1))


def _admit_queue_length(platform: Platform, model: str) -> None:
    limit = platform.settings.flex_queue_limit
    if store.queued_count(platform, FLEX, model, limit) >= limit:
        retry_after = str(platform.settings.flex_retry_after_seconds)
        raise PlatformError(
            429,
            f"The flex queue for `{model}` is full ({limit} requests waiting); retry after "
            f"{retry_after} s or use the default service tier.",
            type="requests",
            code="rate_limit_exceeded",
            headers={"Retry-After": retry_after},
        )


def submit(
    platform: Platform, *, id: str, owner: str, endpoint: str, body: dict[str, Any], **fields: Any
) -> Request:
    """Admit and enqueue one flex job with the flex deadline."""
    spec = platform.model(body.get("model"))
    spec.check_task(embeddings=False)  # embeddings are realtime or batch work
    if not spec.serves(FLEX):
        raise PlatformError(
            400,
            f"The model `{spec.name}` is not offered in the flex tier.",
            param="service_tier",
            code="invalid_value",
        )
    admit(platform, spec.name, endpoint, body)
    return jobs.enqueue(
        platform,
        id=id,
        owner=owner,
        tier=FLEX,
        endpoint=endpoint,
        model=spec.name,
        body=body,
        deadline_seconds=platform.settings.flex_deadline_seconds,
        output_limit=_output_tokens(platform, endpoint, body),
        **fields,
    )


def with_eta(platform: Platform, row: Request, obj: dict[str, Any]) -> dict[str, Any]:
    """A background flex response still to finish carries ``estimated_completion_at`` (an
    extension, as on batches: unix seconds, null when unknown)."""
    if row.tier != FLEX or obj.get("status") not in ("queued", "in_progress"):
        return obj
    eta = None
    if row.deadline is not None:
        try:
            eta = admission.job_eta(platform, row.model, row.deadline.timestamp())
        except Exception:  # Redis away: an unknown estimate, not a failed read
            eta = None
    return {**obj, "estimated_completion_at": None if eta is None else int(eta)}


def raise_error(event: Event) -> None:
    if isinstance(event, Failed):
        raise realtime.failure(event)


# -- Chat Completions and Completions with service_tier "flex" --------------------------------


def result(platform: Platform, request_id: str) -> dict[str, Any]:
    """Wait for a blocking flex completion; its object, or its error raised."""
    timeout = platform.settings.flex_wait_seconds
    if wait(platform, request_id, timeout) is None:
        jobs.stop(platform, request_id, status="cancelled")  # nobody can fetch it later
        raise PlatformError(
            504, f"The flex request did not finish within {timeout:g} s.", code="timeout"
        )
    row = store.load(platform, request_id)
    if row is not None and row.result is not None and row.status == "completed":
        return row.result
    error = (row.error if row is not None else None) or {}
    raise PlatformError(
        (row.status_code if row is not None else None) or 500,
        error.get("message") or "The request failed.",
        code=error.get("code"),
        param=error.get("param"),
    )


def live_events(platform: Platform, request_id: str) -> Iterator[Event]:
    """Live events of a flex completion; waits for the first output before returning so
    an error before any token still gets its own HTTP status."""
    stream = events(platform, request_id, timeout=platform.settings.flex_wait_seconds)
    try:
        first = next(stream)
        while isinstance(first, Started | Idle):
            first = next(stream)
    except TimeoutError:
        jobs.stop(platform, request_id, status="cancelled")
        raise PlatformError(
            504, "The flex request did not start in time.", code="timeout"
        ) from None
    raise_error(first)

    def relay() -> Iterator[Event]:
        yield first
        for event in stream:
            raise_error(event)
            yield event

    return relay()
