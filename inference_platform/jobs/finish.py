"""Ending a job that did not complete: cancelled by its owner, failed, or expired.

Whoever stops a job (the API, the sweeper, the worker itself) finishes it the same way and at
once, without waiting for a worker that may be gone: the output already streamed to the event
channel is kept in the stored object (and billed, for a cancellation), then the channel gets
its terminal event so every waiting reader wakes up. Doing this again is harmless.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from redis.exceptions import WatchError

from inference_platform import usage
from inference_platform.db.models import Request
from inference_platform.events import (
    End,
    Failed,
    Terminal,
    Usage,
    decode_entries,
    encode,
    stream_key,
)
from inference_platform.jobs import progress as progress_mod
from inference_platform.jobs import results, store
from inference_platform.jobs.progress import Progress
from inference_platform.platform import Platform

log = logging.getLogger(__name__)

_RETRIES = 10


def stop(
    platform: Platform,
    request_id: str,
    *,
    status: str,
    error: dict[str, Any] | None = None,
    status_code: int | None = None,
    attempt: int | None = None,
    notify: bool = True,
) -> bool:
    """Move a running job to ``status`` and finish it; True if this call stopped it.

    ``notify`` tells the worker running it (if any) to abort the generation and free the slot.
    """
    changed = store.transition(
        platform,
        request_id,
        status=status,
        error=error,
        status_code=status_code,
        attempt=attempt,
    )
    if changed and notify:
        platform.events.cancel(request_id)
    seal(platform, request_id)
    return changed


def seal(platform: Platform, request_id: str) -> None:
    """Keep a stopped job's output and end its event stream (idempotent)."""
    key = stream_key(request_id)
    for _ in range(_RETRIES):
        with platform.redis.pipeline() as pipe:
            try:
                # WATCH: if the worker appends a delta between our read and our terminal
                # event, start over, so the kept text is exactly what the stream shows.
                pipe.watch(key)
                entries: list[Any] = pipe.xrange(key)  # type: ignore[assignment]
                state = progress_mod.read([e for _id, e in decode_entries(entries)])
                if state.terminal is not None:
                    return
                row = store.load(platform, request_id)
                if row is None or row.status not in store.STOPPED:
                    return
                kept = _kept_output(row, state)
                pipe.multi()
                pipe.xadd(key, {"d": encode(kept.terminal)})
                pipe.expire(key, platform.events.ttl)
                pipe.execute()
            except WatchError:
                continue
        # Only the caller whose terminal event landed writes the row: concurrent finishers
        # (the canceller and the aborted worker) cannot leave a shorter text behind.
        store.save_stopped_result(platform, row.id, row.status, kept.result, kept.bill)
        return
    log.warning("could not finish %s: its stream kept changing", request_id)


@dataclass
class _Kept:
    result: dict[str, Any] | None
    bill: dict[str, Any] | None
    terminal: Terminal


def _kept_output(row: Request, state: Progress) -> _Kept:
    """The stopped job's object, its bill and the channel's terminal event (which carries the
    object, so readers woken by it need not wait for the row to be written)."""
    n = int(row.body.get("n") or 1)
    error = row.error or {}
    outcome = results.Outcome(
        status=row.status,
        texts=[state.text(i) for i in range(n)],
        finish=[state.finish.get(i) for i in range(n)],
        logprobs=[state.logprobs.get(i, []) for i in range(n)],
        prompt_tokens=state.total_prompt(),
        output_tokens=state.total_output(),
        cached_tokens=state.total_cached(),
        produced=state.produced,
        error={"status": row.status_code, "message": error.get("message", "")}
        if row.status != "cancelled"
        else None,
    )
    # A cancellation bills what was generated up to then; our own failures bill nothing.
    bill = None
    if row.status == "cancelled" and state.produced:
        bill = usage.usage_row(
            request_id=row.id,
            owner=row.owner,
            model=row.model,
            tier=row.tier,
            endpoint=row.endpoint,
            input_tokens=outcome.prompt_tokens,
            output_tokens=outcome.output_tokens,
            cached_tokens=outcome.cached_tokens,
            api_key_id=row.api_key_id,
        )
    result = results.build(row, outcome)
    terminal: Terminal
    if row.status == "cancelled":
        usage_ = Usage(outcome.prompt_tokens, outcome.output_tokens, outcome.cached_tokens)
        terminal = End(usage_, status="cancelled", result=result)
    else:
        terminal = Failed(
            row.status_code or 500,
            error.get("code") or "server_error",
            error.get("message") or "The request failed.",
            error.get("param"),
            result=result,
        )
    return _Kept(result, bill, terminal)
