"""Running batch lines on a GPU worker: claim a chunk, generate it concurrently, record results.

A chunk is up to ``--batch-size`` queued lines of one model, claimed in one statement with
``FOR UPDATE SKIP LOCKED`` (status ``in_progress``, ``attempt + 1``, a lease). All its lines go
to the engine at once so its batching does the work. Finished lines are written in small groups
with a conditional update (``status = 'in_progress' AND attempt = n``) and their usage in the
same transaction, so a chunk delivered twice, or a line that was cancelled, expired or re-run
elsewhere meanwhile, never records a second result or a second bill.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from inference_platform.batches import outputs
from inference_platform.batches.leases import keeper
from inference_platform.batches.record import Outcome, Recorder
from inference_platform.engines.base import EngineAborted
from inference_platform.engines.host import EngineHost
from inference_platform.generation import Choice, GenerationResult, plan
from inference_platform.platform import Platform
from inference_platform.tiers import BATCH

_CLAIM = text(
    """
    WITH picked AS (
        SELECT id FROM requests
        WHERE model = :model AND tier = 'batch' AND status = 'queued'
        ORDER BY deadline, batch_id, line_no
        LIMIT :n
        FOR UPDATE SKIP LOCKED
    )
    UPDATE requests r
    SET status = 'in_progress', attempt = r.attempt + 1, dispatched_at = now(),
        lease_until = now() + make_interval(secs => :lease),
        started_at = coalesce(r.started_at, now())
    FROM picked WHERE r.id = picked.id
    RETURNING r.id, r.batch_id, r.owner, r.model, r.endpoint, r.body, r.attempt
    """
)


@dataclass
class Line:
    id: str
    batch_id: str
    owner: str
    model: str
    endpoint: str
    body: dict[str, Any]
    attempt: int


@dataclass
class _Running:
    line: Line
    result: GenerationResult
    remaining: int
    done: bool = False


_slots: dict[int, threading.BoundedSemaphore] = {}
_slots_lock = threading.Lock()


def _chunk_slots(n: int) -> threading.BoundedSemaphore:
    with _slots_lock:
        if n not in _slots:
            _slots[n] = threading.BoundedSemaphore(max(1, n))
        return _slots[n]


def run(
    platform: Platform,
    host: EngineHost,
    model: str,
    *,
    chunk_size: int,
    stopping: threading.Event | None = None,
) -> int:
    """Claim and run chunks for a while; returns how many lines were run.

    At most ``batch_worker_chunks`` run at once per process: a hint that arrives when they
    are all busy is dropped (the dispatcher sends more), leaving the thread to realtime work.
    """
    settings = platform.settings
    slots = _chunk_slots(settings.batch_worker_chunks)
    if not slots.acquire(blocking=False):
        return 0
    try:
        done = 0
        until = time.monotonic() + settings.batch_task_seconds
        while time.monotonic() < until and not (stopping and stopping.is_set()):
            lines = claim(platform, model, chunk_size)
            if not lines:
                break
            run_chunk(platform, host, lines)
            done += len(lines)
        return done
    finally:
        slots.release()


def claim(platform: Platform, model: str, n: int) -> list[Line]:
    with platform.db.session() as s:
        rows = s.execute(
            _CLAIM, {"model": model, "n": n, "lease": platform.settings.lease_seconds}
        ).all()
    return [Line(r.id, r.batch_id, r.owner, r.model, r.endpoint, r.body, r.attempt) for r in rows]


def run_chunk(platform: Platform, host: EngineHost, lines: list[Line]) -> None:
    """Generate every line of a claimed chunk and record each result once."""
    leases = keeper(platform)
    leases.hold([(line.id, line.attempt) for line in lines])
    recorder = Recorder(platform)
    finished: set[str] = set()

    def emit(outcome: Outcome) -> None:
        finished.add(outcome.id)
        recorder.add(outcome)

    try:
        _generate(platform, host, lines, emit)
    except BaseException:
        # Stop their generations and hand unfinished lines straight back instead of waiting
        # for their leases to lapse.
        for line in lines:
            if line.id not in finished:
                host.abort_group(line.id)
                recorder.add(Outcome.requeue(line.id, line.batch_id, line.attempt))
        raise
    finally:
        try:
            recorder.finish()
        finally:
            leases.release([line.id for line in lines])


def _generate(
    platform: Platform, host: EngineHost, lines: list[Line], emit: Callable[[Outcome], None]
) -> None:
    created = int(time.time())
    requests, owner_of = [], []
    for line in lines:
        try:
            body = outputs.prepare(line.endpoint, line.body)
            engine_requests, prompt_of = plan(
                host,
                line.endpoint,
                body,
                line.id,
                tier=BATCH,
                default_max_tokens=platform.settings.default_max_tokens,
            )
        except Exception as exc:  # e.g. the prompt does not fit: this line fails, not the chunk
            emit(_failure(line, exc))
            continue
        item = _Running(
            line,
            GenerationResult([Choice() for _ in engine_requests], prompt_of),
            len(engine_requests),
        )
        for index, request in enumerate(engine_requests):
            requests.append(request)
            owner_of.append((item, index))
    for position, delta in host.stream(requests):
        item, index = owner_of[position]
        if item.done:
            continue
        if isinstance(delta, BaseException):
            item.done = True
            if isinstance(delta, EngineAborted):
                # Aborted from outside (cancel/expiry closed the line already, or a stray
                # abort): hand it back; the conditional update ignores closed lines.
                emit(Outcome.requeue(item.line.id, item.line.batch_id, item.line.attempt))
            else:
                host.abort_group(item.line.id)
                emit(_failure(item.line, delta))
            continue
        choice = item.result.choices[index]
        choice.text += delta.text
        choice.prompt_tokens = delta.prompt_tokens or choice.prompt_tokens
        choice.completion_tokens = delta.completion_tokens
        if delta.finish_reason:
            choice.finish_reason = delta.finish_reason
            item.remaining -= 1
            if item.remaining == 0:
                item.done = True
                emit(_success(item, created))


def _success(item: _Running, created: int) -> Outcome:
    line = item.line
    body = outputs.success_body(line.endpoint, line.id, line.model, line.body, item.result, created)
    return Outcome(
        id=line.id,
        batch_id=line.batch_id,
        attempt=line.attempt,
        status="completed",
        status_code=200,
        result=json.dumps(body, separators=(",", ":")),
        usage=(item.result.prompt_tokens, item.result.completion_tokens),
        owner=line.owner,
        model=line.model,
        endpoint=line.endpoint,
    )


def _failure(line: Line, exc: BaseException) -> Outcome:
    status, body = outputs.error_body(exc)
    return Outcome(
        id=line.id,
        batch_id=line.batch_id,
        attempt=line.attempt,
        status="failed",
        status_code=status,
        result=json.dumps(body, separators=(",", ":")),
        owner=line.owner,
        model=line.model,
        endpoint=line.endpoint,
    )
