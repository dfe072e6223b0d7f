"""The realtime path: enqueue on ``realtime.<model>`` and follow the request's events.

Realtime requests that a client waits on skip Postgres on the hot path; the worker records
their usage afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from inference_platform import liveness
from inference_platform.celery_app import queue_name
from inference_platform.engines.base import TokenLogprob
from inference_platform.errors import PlatformError, unavailable
from inference_platform.events import (
    ChoiceEnd,
    End,
    Event,
    Failed,
    NoWorker,
    Started,
    TextDelta,
    Usage,
)
from inference_platform.generation import EMBEDDINGS
from inference_platform.ids import new_id
from inference_platform.keys import REQUEST_KEY
from inference_platform.platform import Platform
from inference_platform.tiers import REALTIME


@dataclass
class Submitted:
    """A request that is on its way to a worker."""

    id: str
    created: int
    model: str
    endpoint: str
    service_tier: str
    body: dict[str, Any] = field(repr=False)


def submit(
    platform: Platform,
    *,
    owner: str,
    endpoint: str,
    body: dict[str, Any],
    id_prefix: str,
    service_tier: str,
    tier: str = REALTIME,
) -> Submitted:
    """Check a worker serves the model, then publish the task. Raises 404/503."""
    spec = platform.model(body.get("model"))
    spec.check_task(embeddings=endpoint == EMBEDDINGS)
    if not spec.serves(tier):
        raise PlatformError(
            400,
            f"The model `{spec.name}` is not offered in the {tier} tier.",
            param="service_tier",
            code="invalid_value",
        )
    queue = queue_name(tier, spec.name)
    # A model whose first worker is still loading is waited for; one whose workers are
    # gone fails at once.
    if not platform.liveness.await_worker(queue, platform.settings.worker_wait_seconds):
        raise unavailable(
            f"No worker is serving `{spec.name}` in the {tier} tier right now; try again later.",
            code="model_unavailable",
        )
    job = Submitted(new_id(id_prefix), int(time.time()), spec.name, endpoint, service_tier, body)
    payload = {
        "id": job.id,
        "endpoint": endpoint,
        "model": spec.name,
        "owner": owner,
        "api_key_id": REQUEST_KEY.get(),
        "tier": tier,
        "body": body,
        "stream": bool(body.get("stream")),
        # The worker measures the request's queue wait from it.
        "enqueued_at": time.time(),
    }
    platform.sender.send(queue, payload)
    return job


def follow(platform: Platform, job: Submitted) -> Iterator[Event]:
    """Events of a submitted request until ``end``; engine errors become PlatformError."""
    settings = platform.settings
    holder: dict[str, str] = {}

    def check_worker() -> None:
        # Tokens stopped coming: if the worker that took the request is gone, say so now
        # rather than after the whole request timeout.
        queue, worker = holder.get("queue"), holder.get("worker")
        if (
            queue
            and worker
            and not liveness.worker_alive(
                platform.redis, queue, worker, settings.worker_heartbeat_seconds * 3
            )
        ):
            raise unavailable(
                "The worker serving this request stopped before it finished; try again.",
                code="worker_lost",
            )

    try:
        for event in platform.events.follow(
            job.id,
            first_timeout=settings.worker_wait_seconds,
            total_timeout=settings.request_timeout_seconds,
            on_idle=check_worker,
        ):
            if isinstance(event, Started):
                holder.update(worker=event.worker, queue=event.queue)
            if isinstance(event, Failed):
                raise failure(event)
            yield event
    except NoWorker:
        # A worker that takes it later must skip it: the client has been told it failed.
        platform.events.cancel(job.id)
        raise unavailable(
            f"No worker picked up the request for `{job.model}` within "
            f"{settings.worker_wait_seconds:g} s; try again later.",
            code="model_unavailable",
        ) from None
    except TimeoutError:
        platform.events.cancel(job.id)
        raise PlatformError(
            504, "The request took longer than the server's time limit.", code="timeout"
        ) from None


def failure(event: Failed) -> PlatformError:
    """The client's error for a failed request's terminal event."""
    headers = {"Retry-After": str(event.retry_after)} if event.retry_after else None
    return PlatformError(
        event.status, event.message, code=event.code, param=event.param, headers=headers
    )


def follow_started(platform: Platform, job: Submitted) -> Iterator[Event]:
    """Like ``follow`` but waits, before returning, until generation has really begun.

    Errors that come before the first token (no worker, prompt too long) are raised here,
    while the view can still answer with a proper status code instead of a broken stream.
    """
    events = follow(platform, job)
    first = next(events)
    while isinstance(first, Started):
        first = next(events)

    def chained() -> Iterator[Event]:
        yield first
        yield from events

    return chained()


@dataclass
class Collected:
    texts: list[str]
    finish: list[str | None]
    usage: Usage
    # Per choice, its tokens' log probabilities (empty unless the request asked for them).
    logprobs: list[list[TokenLogprob]] = field(default_factory=list)


def collect(platform: Platform, job: Submitted, n_choices: int) -> Collected:
    """Wait for the whole result (non-streaming requests)."""
    texts = [""] * n_choices
    finish: list[str | None] = [None] * n_choices
    logprobs: list[list[TokenLogprob]] = [[] for _ in range(n_choices)]
    usage = Usage()
    for event in follow(platform, job):
        if isinstance(event, TextDelta):
            texts[event.index] += event.text
            logprobs[event.index].extend(event.logprobs or ())
        elif isinstance(event, ChoiceEnd):
            finish[event.index] = event.finish_reason
        elif isinstance(event, End):
            usage = event.usage
            for i, (text, reason) in enumerate(event.choices or ()):
                texts[i], finish[i] = text, reason
            for i, tokens in enumerate(event.logprobs or ()):
                logprobs[i] = list(tokens)
    return Collected(texts, finish, usage, logprobs)


def cancel(platform: Platform, job: Submitted) -> None:
    """The client went away: abort the generation and free its engine slot."""
    platform.events.cancel(job.id)
