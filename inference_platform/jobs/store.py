"""Durable work in the ``requests`` table: insert, claim, renew, record, release, stop.

One table holds every piece of work a client was given an id for: background and flex
responses (``batch_id`` NULL, "jobs") and batch lines (``batch_id`` set, "lines"). Every state
change is a conditional update, so two workers (a redelivered message, a retry racing a slow
first attempt) or a worker and a canceller never both win: whoever's condition still holds
writes, the other learns it lost and backs off.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg2.extras import execute_values
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from inference_platform import usage
from inference_platform.batches import rows
from inference_platform.db.models import Request
from inference_platform.events import Usage
from inference_platform.keys import REQUEST_KEY
from inference_platform.platform import Platform
from inference_platform.webhooks import outbox as webhooks

RUNNING = ("queued", "in_progress")
# Job statuses that end it; "expired" is the job's own, a client sees "failed".
STOPPED = ("cancelled", "failed", "expired")


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Claimed:
    """One attempt at one piece of work, as a worker claimed it."""

    id: str
    tier: str
    model: str
    endpoint: str
    owner: str
    body: dict[str, Any]
    attempt: int
    created_at: datetime
    batch_id: str | None = None
    api_key_id: str | None = None
    # When it is due: its engine priority follows the slack left (``capacity.model``).
    deadline: datetime | None = None

    @property
    def is_line(self) -> bool:
        """Batch lines and jobs differ only here: ``batch_id`` is set on lines."""
        return self.batch_id is not None


@dataclass(frozen=True)
class Finished:
    """The result of one attempt, to be recorded at most once."""

    work: Claimed
    status: str  # completed | incomplete | failed
    status_code: int
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    # Tokens to bill (cached input apart); None bills nothing.
    bill: Usage | None = None


def insert(
    platform: Platform,
    *,
    id: str,
    owner: str,
    tier: str,
    endpoint: str,
    model: str,
    body: dict[str, Any],
    background: bool = False,
    stream: bool = False,
    store: bool = True,
    previous_response_id: str | None = None,
    deadline_seconds: float | None = None,
    output_limit: int | None = None,
) -> Request:
    """Write a queued job and commit it; the caller enqueues a hint afterwards.

    ``output_limit``: the tokens it may generate in all, counted by the capacity model."""
    created = now()
    row = Request(
        id=id,
        owner=owner,
        api_key_id=REQUEST_KEY.get(),
        tier=tier,
        endpoint=endpoint,
        model=model,
        status="queued",
        body=body,
        priority=0,
        attempt=0,
        background=background,
        stream=stream,
        store=store,
        previous_response_id=previous_response_id,
        created_at=created,
        dispatched_at=created,
        deadline=created + timedelta(seconds=deadline_seconds) if deadline_seconds else None,
        output_limit=output_limit,
    )
    with platform.db.session() as s:
        s.add(row)
    return row


def load(platform: Platform, request_id: str) -> Request | None:
    with platform.db.session() as s:
        return s.get(Request, request_id)


# The one claim: queued work of one tier and model, earliest deadline first (1 h batches and
# flex before 24 h batches; no deadline last, as ascending order puts NULLs), skipping rows
# another worker is claiming right now. Within a batch, the lines with the largest output
# limit go first (then file order): the engine runs them alongside the rest, and the batch does
# not end on a few long lines running alone with the engine's other slots empty (the demo
# benchmark's 200 lines of 16-256 tokens need about 6% fewer engine steps this way than in file
# order). Before that, a batch's lines are grouped by prompt prefix (``batches.prefix``), so
# lines that share one run while the engine's prefix cache still holds it; the longest-first
# order holds within each group. For batch lines the order is that of the partial index
# ix_requests_batch_queue, so a claim reads its rows off the index instead of sorting every
# queued line of a 50,000-line batch.
_CLAIM = text(
    """
    WITH picked AS (
        SELECT id FROM requests
        WHERE tier = :tier AND model = :model AND status = 'queued'
          AND (deadline IS NULL OR deadline > now())
        ORDER BY deadline, batch_id, prefix_hash, output_limit DESC NULLS FIRST, line_no
        LIMIT :n
        FOR UPDATE SKIP LOCKED
    )
    UPDATE requests r
    SET status = 'in_progress', attempt = r.attempt + 1,
        lease_until = now() + make_interval(secs => :lease),
        started_at = coalesce(r.started_at, now())
    FROM picked WHERE r.id = picked.id
    RETURNING r.id, r.tier, r.model, r.endpoint, r.owner, r.body, r.attempt, r.created_at,
              r.batch_id, r.api_key_id, r.deadline
    """
)


def claim(platform: Platform, *, tier: str, model: str, limit: int) -> list[Claimed]:
    """Take up to ``limit`` queued pieces of work for one attempt each."""
    if limit <= 0:
        return []
    params = {"tier": tier, "model": model, "n": limit, "lease": platform.settings.lease_seconds}
    with platform.db.session() as s:
        found = s.execute(_CLAIM, params).all()
    return [Claimed(*row) for row in found]


_RENEW = text(
    "UPDATE requests r SET lease_until = now() + make_interval(secs => :lease) "
    "FROM unnest(CAST(:ids AS text[]), CAST(:attempts AS int[])) AS v(id, attempt) "
    "WHERE r.id = v.id AND r.attempt = v.attempt AND r.status = 'in_progress' "
    "RETURNING r.id"
)


def renew(platform: Platform, held: dict[str, int], lease_seconds: float) -> set[str]:
    """Extend the leases of the work this process runs; returns the ids still ours."""
    if not held:
        return set()
    params = {"lease": lease_seconds, "ids": list(held), "attempts": list(held.values())}
    with platform.db.session() as s:
        return {row[0] for row in s.execute(_RENEW, params)}


# Exactly-once completion: only rows still in progress at the claimed attempt take a result.
# Lines get a result sequence number (their order in the output files).
_RECORD = """
    UPDATE requests AS r
    SET status = v.status, status_code = v.code, result = v.result, error = v.error,
        result_seq = CASE WHEN r.batch_id IS NULL THEN NULL
                          ELSE nextval('request_result_seq') END,
        finished_at = now(), lease_until = NULL
    FROM (VALUES %s) AS v(id, attempt, status, code, result, error)
    WHERE r.id = v.id AND r.status = 'in_progress' AND r.attempt = v.attempt
    RETURNING r.id
"""


def record(
    session: Session, done: Sequence[Finished], files: set[tuple[str, bool]] | None = None
) -> set[str]:
    """Record results and bill them in the caller's transaction; returns the ids written.

    A result whose attempt no longer owns its row (cancelled, expired, retried elsewhere)
    is dropped here, with its bill. ``files``: (batch, failed) pairs whose output (False) or
    error (True) file is known to exist, kept by a caller that records many groups to spare
    the lookup; the pairs this call makes sure of are added, true once the transaction commits.
    """
    if not done:
        return set()
    batches = {f.work.batch_id for f in done if f.work.batch_id is not None}
    # Result order equals commit order for readers of partial batch results.
    rows.lock_batches(session, batches)
    values = [
        (
            f.work.id,
            f.work.attempt,
            f.status,
            f.status_code,
            None if f.result is None else json.dumps(f.result, separators=(",", ":")),
            None if f.error is None else json.dumps(f.error),
        )
        for f in done
    ]
    cursor = session.connection().connection.cursor()
    try:
        returned = execute_values(
            cursor,
            _RECORD,
            values,
            template="(%s, %s::int, %s, %s::int, %s::jsonb, %s::jsonb)",
            fetch=True,
        )
    finally:
        cursor.close()
    written = {r[0] for r in returned}
    usage.record(
        session,
        [
            usage.usage_row(
                request_id=f.work.id,
                owner=f.work.owner,
                model=f.work.model,
                tier=f.work.tier,
                endpoint=f.work.endpoint,
                input_tokens=f.bill.prompt_tokens,
                output_tokens=f.bill.completion_tokens,
                cached_tokens=f.bill.cached_tokens,
                batch_id=f.work.batch_id,
                api_key_id=f.work.api_key_id,
            )
            for f in done
            if f.work.id in written and f.bill is not None
        ],
    )
    webhooks.responses_ended(
        session, [f.work.id for f in done if f.work.id in written and f.work.batch_id is None]
    )
    known = set() if files is None else files
    for batch_id in batches:
        statuses = {f.status for f in done if f.work.batch_id == batch_id and f.work.id in written}
        wanted = {(batch_id, status == "failed") for status in statuses} - known
        if wanted:
            rows.ensure_result_files(
                session,
                batch_id,
                output=(batch_id, False) in wanted,
                error=(batch_id, True) in wanted,
            )
            known |= wanted
    return written


_RELEASE = text(
    "UPDATE requests SET status = 'queued', lease_until = NULL, dispatched_at = now() "
    "WHERE id = :id AND status = 'in_progress' AND attempt = :attempt"
)


def release(session: Session, work: Claimed) -> None:
    """Hand a claimed piece of work back to the queue (its attempt still counts)."""
    session.execute(_RELEASE, {"id": work.id, "attempt": work.attempt})


def transition(
    platform: Platform,
    request_id: str,
    *,
    status: str,
    error: dict[str, Any] | None = None,
    status_code: int | None = None,
    attempt: int | None = None,
) -> bool:
    """Stop a running job (cancelled, failed, expired); True if this call stopped it.

    With ``attempt``, only while that attempt still owns it (a worker failing its own run).
    """
    conditions = [Request.id == request_id, Request.status.in_(RUNNING)]
    if attempt is not None:
        conditions += [Request.status == "in_progress", Request.attempt == attempt]
    stmt = (
        update(Request)
        .where(*conditions)
        .values(
            status=status,
            error=error,
            status_code=status_code,
            lease_until=None,
            finished_at=func.now(),
        )
        .execution_options(synchronize_session=False)
    )
    with platform.db.session() as s:
        stopped = rows.rowcount(s.execute(stmt)) == 1
        if stopped:
            webhooks.responses_ended(s, [request_id])
        return stopped


def save_stopped_result(
    platform: Platform,
    request_id: str,
    status: str,
    result: dict[str, Any] | None,
    usage_row: dict[str, Any] | None,
) -> None:
    """Keep the output a stopped job had produced (and bill it, once, if billable)."""
    stmt = (
        update(Request)
        .where(Request.id == request_id, Request.status == status)
        .values(result=result)
        .execution_options(synchronize_session=False)
    )
    with platform.db.session() as s:
        s.execute(stmt)
        if usage_row is not None:
            usage.record(s, [usage_row])


def queued_count(platform: Platform, tier: str, model: str, cap: int) -> int:
    """Queued jobs of one tier and model, counted up to ``cap`` (cheap at any depth)."""
    inner = (
        select(Request.id)
        .where(
            Request.status == "queued",
            Request.tier == tier,
            Request.model == model,
            Request.batch_id.is_(None),
        )
        .limit(cap)
        .subquery()
    )
    with platform.db.session() as s:
        return int(s.execute(select(func.count()).select_from(inner)).scalar_one())
