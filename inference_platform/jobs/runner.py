"""Running one durable job on a worker: claim, generate, publish, complete once.

A retried attempt (its predecessor's worker died) does not start over: it reads what the
earlier attempt already streamed and continues the text from there. Readers of the stream
therefore never see text twice, sequence numbers stay stable, and nothing already generated
is thrown away.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from inference_platform import usage
from inference_platform.db.models import Request
from inference_platform.engines.base import Delta, EngineAborted, EngineError, GenerationRequest
from inference_platform.engines.host import EngineHost
from inference_platform.events import ChoiceEnd, End, EventChannel, Started, TextDelta, Usage
from inference_platform.generation import (
    Choice,
    GenerationResult,
    error_event,
    execute,
    plan,
)
from inference_platform.jobs import progress, results, store
from inference_platform.jobs.finish import finalize, stop
from inference_platform.jobs.leases import LeaseKeeper, keeper
from inference_platform.jobs.progress import Progress
from inference_platform.platform import Platform

log = logging.getLogger(__name__)


def run(platform: Platform, host: EngineHost, request_id: str) -> None:
    """Run job ``request_id`` if it is still queued; a duplicate message does nothing."""
    job = store.claim(platform, request_id, platform.settings.lease_seconds)
    if job is None:
        return
    leases = keeper(platform, host)
    leases.hold(job.id, job.attempt)
    try:
        _run(platform, host, job, leases)
    finally:
        leases.release(job.id)


def _run(platform: Platform, host: EngineHost, job: Request, leases: LeaseKeeper) -> None:
    events = platform.events
    prior = progress.read(events.all_events(job.id))
    if events.start(job.id, Started(attempt=job.attempt)):
        # Stopped between our claim and now, before the generation existed to abort.
        finalize(platform, job.id)
        return
    publisher = _Publisher(events, job.id, leases)
    try:
        requests, prompt_of = plan(
            host,
            job.endpoint,
            job.body,
            job.id,
            tier=job.tier,
            default_max_tokens=platform.settings.default_max_tokens,
        )
        result = resume(host, requests, prompt_of, prior, publisher)
    except EngineAborted:
        finalize(platform, job.id)  # cancelled or expired: keep its output; lost: no-op
        return
    except Exception as exc:
        if leases.lost(job.id):
            return
        if not isinstance(exc, EngineError):
            log.exception("job %s failed", job.id)
        err = error_event(exc)
        stop(
            platform,
            job.id,
            status="failed",
            status_code=err.status,
            error={"code": err.code, "message": err.message, "param": err.param},
            attempt=job.attempt,
            notify=False,
        )
        return
    _complete(platform, job, result)


def _complete(platform: Platform, job: Request, result: GenerationResult) -> None:
    outcome = results.Outcome(
        status="completed",
        texts=[c.text for c in result.choices],
        finish=[c.finish_reason for c in result.choices],
        prompt_tokens=result.prompt_tokens,
        output_tokens=result.completion_tokens,
    )
    obj = results.build(job, outcome)
    status = results.job_status(obj, outcome)
    bill = usage.usage_row(
        request_id=job.id,
        owner=job.owner,
        model=job.model,
        tier=job.tier,
        endpoint=job.endpoint,
        input_tokens=outcome.prompt_tokens,
        output_tokens=outcome.output_tokens,
    )
    # Postgres first, then the notice: a reader woken by "end" always finds the result.
    if store.complete(platform, job, status=status, result=obj, usage_row=bill):
        usage_ = Usage(result.prompt_tokens, result.completion_tokens)
        platform.events.publish(job.id, End(usage_, status=status))
    else:
        finalize(platform, job.id)  # stopped while we finished; keeps what we streamed


class _Publisher:
    """Publishes a job's deltas with running token counts, until its lease is lost."""

    def __init__(self, events: EventChannel, request_id: str, leases: LeaseKeeper) -> None:
        self.events = events
        self.request_id = request_id
        self.leases = leases

    def __call__(self, index: int, text: str, finish: str | None, n: int, p: int) -> None:
        if self.leases.lost(self.request_id):
            return  # another attempt owns the stream now
        if text:
            self.events.publish(self.request_id, TextDelta(index, text, n, p))
        if finish:
            self.events.publish(self.request_id, ChoiceEnd(index, finish, n, p))


def resume(
    host: EngineHost,
    requests: list[GenerationRequest],
    prompt_of: list[int],
    prior: Progress,
    publish: _Publisher,
) -> GenerationResult:
    """Generate what ``prior`` (earlier attempts) has not: each unfinished choice continues
    from its text, with the output budget that is left."""
    result = GenerationResult([Choice() for _ in requests], list(prompt_of))
    todo: list[GenerationRequest] = []
    where: list[int] = []
    for i, req in enumerate(requests):
        choice = result.choices[i]
        choice.text = prior.text(i)
        choice.completion_tokens = prior.output_tokens.get(i, 0)
        choice.prompt_tokens = prior.prompt_tokens.get(i, 0)
        if i in prior.finish:
            choice.finish_reason = prior.finish[i]
            continue
        left = req.params.max_tokens - choice.completion_tokens
        if left <= 0:
            choice.finish_reason = "length"
            publish(i, "", "length", choice.completion_tokens, choice.prompt_tokens)
            continue
        if choice.text or choice.completion_tokens:
            req = replace(
                req, prompt=req.prompt + choice.text, params=replace(req.params, max_tokens=left)
            )
        todo.append(req)
        where.append(i)
    if not todo:
        return result

    def on_delta(j: int, delta: Delta) -> None:
        i = where[j]
        n = prior.output_tokens.get(i, 0) + delta.completion_tokens
        p = prior.prompt_tokens.get(i) or delta.prompt_tokens
        publish(i, delta.text, delta.finish_reason, n, p)

    fresh = execute(host, todo, [prompt_of[i] for i in where], on_delta=on_delta)
    for j, new in enumerate(fresh.choices):
        choice = result.choices[where[j]]
        choice.text += new.text
        choice.completion_tokens += new.completion_tokens
        choice.prompt_tokens = choice.prompt_tokens or new.prompt_tokens
        choice.finish_reason = new.finish_reason
    return result
