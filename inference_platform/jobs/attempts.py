"""One attempt at one piece of work, as the feed runs it.

Realtime requests, jobs (background and flex responses) and batch lines run the same way:
plan the engine requests, fold every delta into one ``GenerationResult``, and end with a
result. They differ in a few hooks:

* a realtime request (``LiveAttempt``) is pushed by its task, not claimed, and lives only on
  the event channel: it streams its deltas (or, for a client that does not stream, only the
  end with every choice) and is billed once it ends;

* a job announces itself and streams its deltas (with running token counts) on the event
  channel, continues an earlier attempt's text instead of starting over, is recorded at once
  (a client may be waiting) and, when stopped, keeps what it had streamed;
* a line streams nothing, always starts over, and is recorded in groups with its batch's
  other lines; a line aborted from outside goes back to the queue.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from inference_platform.batches import outputs
from inference_platform.capacity.model import priority as deadline_priority
from inference_platform.db.models import Request
from inference_platform.engines.base import (
    Delta,
    EmbeddingRequest,
    EngineAborted,
    EngineError,
    GenerationRequest,
)
from inference_platform.engines.host import EngineHost
from inference_platform.events import ChoiceEnd, End, Event, Started, TextDelta
from inference_platform.generation import GenerationResult, error_event, plan
from inference_platform.jobs import progress, results
from inference_platform.jobs.finish import seal, stop
from inference_platform.jobs.leases import LeaseKeeper
from inference_platform.jobs.progress import Progress
from inference_platform.jobs.store import Claimed, Finished
from inference_platform.platform import Platform
from inference_platform.usage import usage_row

log = logging.getLogger(__name__)


@dataclass
class Context:
    """What every attempt of one feed shares."""

    platform: Platform
    host: EngineHost
    leases: LeaseKeeper


@dataclass
class Attempt:
    work: Claimed
    result: GenerationResult = field(default_factory=GenerationResult)
    # Engine requests still to run, and the choice each one produces.
    requests: list[GenerationRequest | EmbeddingRequest] = field(default_factory=list)
    where: list[int] = field(default_factory=list)
    running: int = 0
    failure: BaseException | None = None
    # Choices that end without running (their budget was spent by an earlier attempt).
    spent: list[int] = field(default_factory=list)

    def start(self, ctx: Context) -> bool:
        """Plan the engine requests (a planning error is kept as the attempt's failure).

        False when the attempt has already been dealt with and needs nothing more.
        """
        raise NotImplementedError

    def opening_events(self) -> list[tuple[str, Event]]:
        """Events to publish as the attempt starts."""
        return []

    def on_delta(self, j: int, delta: Delta, out: list[tuple[str, Event]]) -> None:
        """Fold a delta of engine request ``j``; events to publish go to ``out``."""
        self.result.add(self.where[j], delta)

    def closing_events(self) -> list[tuple[str, Event]]:
        """Events to publish as the attempt ends (before anything is recorded)."""
        return []

    def bill(self) -> dict[str, Any] | None:
        """A usage row to record on its own, for work with no row of its own."""
        return None

    def on_failure(self, ctx: Context, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
            # The first failure ends the attempt: stop its sibling choices too.
            ctx.host.abort_group(self.work.id)

    def finish(self, ctx: Context) -> Finished | None:
        """The attempt's result for the recorder, or None when it was handled here."""
        raise NotImplementedError

    def _plan(self, ctx: Context, body: dict[str, Any]) -> list[GenerationRequest]:
        requests, prompt_of = plan(
            ctx.host,
            self.work.endpoint,
            body,
            self.work.id,
            tier=self.work.tier,
            default_max_tokens=ctx.platform.settings.default_max_tokens,
        )
        self.result = GenerationResult.empty(prompt_of)
        due = self.work.deadline
        if due is None:
            return requests
        # Flex and batch work enters the engine at the priority its deadline's slack earns,
        # so a more urgent line overtakes those already waiting in the engine's queue.
        now = time.time()
        return [
            replace(r, priority=deadline_priority(due.timestamp(), now, r.priority))
            if r.priority > 0
            else r
            for r in requests
        ]


class LineAttempt(Attempt):
    """A batch line: fresh every attempt, nothing streamed, recorded with its batch."""

    created: int = 0

    def start(self, ctx: Context) -> bool:
        self.created = int(time.time())
        try:
            planned = self._plan(ctx, outputs.prepare(self.work.endpoint, self.work.body))
            # Nobody reads a line before it ends: the engine may skip per-token output.
            self.requests = [replace(r, stream=False) for r in planned]
        except Exception as exc:  # e.g. the prompt does not fit: this line fails, not the feed
            self.failure = exc
        self.where = list(range(len(self.requests)))
        return True

    def finish(self, ctx: Context) -> Finished | None:
        if isinstance(self.failure, EngineAborted):
            return None  # closed by cancel or expiry, or a stray abort: the feed hands it back
        work = self.work
        if self.failure is not None:
            status_code, body = outputs.error_body(self.failure)
            return Finished(work, "failed", status_code, result=body)
        body = outputs.success_body(
            work.endpoint, work.id, work.model, work.body, self.result, self.created
        )
        return Finished(work, "completed", 200, result=body, bill=self.result.usage())


class JobAttempt(Attempt):
    """A background or flex response: streamed, resumable, recorded at once."""

    prior: Progress | None = None

    def start(self, ctx: Context) -> bool:
        events = ctx.platform.events
        self.prior = progress.read(events.all_events(self.work.id))
        if events.start(self.work.id, Started(attempt=self.work.attempt)):
            # Stopped between our claim and now, before the generation existed to abort.
            seal(ctx.platform, self.work.id)
            return False
        try:
            planned = self._plan(ctx, self.work.body)
        except Exception as exc:
            self.failure = exc
            return True
        self._resume(planned)
        return True

    def _resume(self, planned: list[GenerationRequest]) -> None:
        """Continue what earlier attempts streamed: a finished choice is kept, an unfinished
        one goes on from its text with the output budget that is left."""
        prior = self.prior or Progress()
        for i, req in enumerate(planned):
            choice = self.result.choices[i]
            choice.text = prior.text(i)
            choice.logprobs = list(prior.logprobs.get(i, ()))
            choice.prior_tokens = choice.completion_tokens = prior.output_tokens.get(i, 0)
            choice.prompt_tokens = prior.prompt_tokens.get(i, 0)
            choice.cached_tokens = prior.cached_tokens.get(i, 0)
            if i in prior.finish:
                choice.finish_reason = prior.finish[i]
                continue
            left = req.params.max_tokens - choice.completion_tokens
            if left <= 0:
                choice.finish_reason = "length"
                self.spent.append(i)
                continue
            if choice.text or choice.completion_tokens:
                params = replace(req.params, max_tokens=left)
                req = replace(req, prompt=req.prompt + choice.text, params=params)
            self.requests.append(req)
            self.where.append(i)

    def opening_events(self) -> list[tuple[str, Event]]:
        """Ends of choices whose budget an earlier attempt spent: they never run again."""
        events: list[tuple[str, Event]] = []
        for i in self.spent:
            choice = self.result.choices[i]
            cached = choice.cached_tokens or None
            end = ChoiceEnd(i, "length", choice.completion_tokens, choice.prompt_tokens, cached)
            events.append((self.work.id, end))
        return events

    def on_delta(self, j: int, delta: Delta, out: list[tuple[str, Event]]) -> None:
        i = self.where[j]
        choice = self.result.add(i, delta)
        n, p, c = choice.completion_tokens, choice.prompt_tokens, choice.cached_tokens
        if delta.text or delta.logprobs:
            logprobs = delta.logprobs or None
            out.append((self.work.id, TextDelta(i, delta.text, n, p, logprobs, c or None)))
        if delta.finish_reason:
            out.append((self.work.id, ChoiceEnd(i, delta.finish_reason, n, p, c or None)))

    def finish(self, ctx: Context) -> Finished | None:
        platform, work = ctx.platform, self.work
        if ctx.leases.lost(work.id):
            return None  # another attempt (or a stop) owns it now
        if isinstance(self.failure, EngineAborted):
            seal(platform, work.id)  # cancelled or expired: keep its output
            return None
        if self.failure is not None:
            if not isinstance(self.failure, EngineError):
                log.error("job %s failed", work.id, exc_info=self.failure)
            err = error_event(self.failure)
            stop(
                platform,
                work.id,
                status="failed",
                status_code=err.status,
                error={"code": err.code, "message": err.message, "param": err.param},
                attempt=work.attempt,
                notify=False,
            )
            return None
        outcome = results.Outcome(
            status="completed",
            texts=[c.text for c in self.result.choices],
            finish=[c.finish_reason for c in self.result.choices],
            logprobs=[c.logprobs for c in self.result.choices],
            prompt_tokens=self.result.prompt_tokens,
            output_tokens=self.result.completion_tokens,
            cached_tokens=self.result.cached_tokens,
        )
        obj = results.build(_row(work), outcome)
        bill = self.result.usage()
        return Finished(work, results.job_status(obj, outcome), 200, result=obj, bill=bill)

    def recorded(self, ctx: Context, written: bool, status: str) -> None:
        """After the conditional write: wake readers, or keep what a stop left us."""
        if written:
            # Postgres first, then the notice: a reader woken by End always finds the result.
            ctx.platform.events.publish(self.work.id, End(self.result.usage(), status=status))
        else:
            seal(ctx.platform, self.work.id)  # stopped while we finished


@dataclass
class LiveAttempt(Attempt):
    """A realtime request a client waits on: no row in Postgres, only its usage afterwards."""

    stream: bool = True
    worker: str = ""
    queue: str = ""
    # Whether the client cancelled before the start, once the start was published (the feed
    # publishes the starts of requests that arrive together in one round trip).
    cancelled: bool | None = None

    @classmethod
    def from_task(cls, payload: dict[str, Any], *, worker: str, queue: str) -> LiveAttempt:
        work = Claimed(
            id=payload["id"],
            tier=payload["tier"],
            model=payload["model"],
            endpoint=payload["endpoint"],
            owner=payload["owner"],
            body=payload["body"],
            attempt=1,
            created_at=_enqueued(payload),
            api_key_id=payload.get("api_key_id"),
        )
        return cls(work, stream=bool(payload.get("stream", True)), worker=worker, queue=queue)

    def started(self) -> Started:
        return Started(attempt=1, worker=self.worker, queue=self.queue)

    def start(self, ctx: Context) -> bool:
        if self.cancelled is None:
            self.cancelled = ctx.platform.events.start(self.work.id, self.started())
        if self.cancelled:
            return False  # the client gave up before we began
        try:
            planned = self._plan(ctx, self.work.body)
            self.requests = [replace(r, stream=self.stream) for r in planned]
        except Exception as exc:  # reported to the waiting client, never swallowed
            self.failure = exc
        self.where = list(range(len(self.requests)))
        return True

    def on_delta(self, j: int, delta: Delta, out: list[tuple[str, Event]]) -> None:
        self.result.add(j, delta)
        if not self.stream:
            return  # a client that does not stream only needs the end
        if delta.text or delta.logprobs:
            out.append((self.work.id, TextDelta(j, delta.text, logprobs=delta.logprobs or None)))
        if delta.finish_reason:
            out.append((self.work.id, ChoiceEnd(j, delta.finish_reason)))

    def finish(self, ctx: Context) -> Finished | None:
        return None

    def closing_events(self) -> list[tuple[str, Event]]:
        if self.failure is not None:
            if not isinstance(self.failure, EngineError):
                log.error("realtime request %s failed", self.work.id, exc_info=self.failure)
            return [(self.work.id, error_event(self.failure))]
        choices = logprobs = None
        if not self.stream:
            choices = tuple((c.text, c.finish_reason) for c in self.result.choices)
            if any(c.logprobs for c in self.result.choices):
                logprobs = tuple(tuple(c.logprobs) for c in self.result.choices)
        return [(self.work.id, End(self.result.usage(), choices=choices, logprobs=logprobs))]

    def bill(self) -> dict[str, Any] | None:
        if self.failure is not None:
            return None
        work = self.work
        return usage_row(
            request_id=work.id,
            owner=work.owner,
            model=work.model,
            tier=work.tier,
            endpoint=work.endpoint,
            input_tokens=self.result.prompt_tokens,
            output_tokens=self.result.completion_tokens,
            cached_tokens=self.result.cached_tokens,
            api_key_id=work.api_key_id,
        )


def _now() -> datetime:
    return datetime.now(UTC)


def _enqueued(payload: dict[str, Any]) -> datetime:
    """When the API sent a realtime request (now, for a message from an older API)."""
    sent = payload.get("enqueued_at")
    return datetime.fromtimestamp(sent, UTC) if isinstance(sent, int | float) else _now()


def _row(work: Claimed) -> Request:
    """A detached row with what the object builders read."""
    return Request(
        id=work.id,
        owner=work.owner,
        tier=work.tier,
        endpoint=work.endpoint,
        model=work.model,
        body=work.body,
        created_at=work.created_at,
    )


def attempt_for(work: Claimed) -> Attempt:
    return LineAttempt(work) if work.is_line else JobAttempt(work)
