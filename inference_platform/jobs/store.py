"""Durable job state in the ``requests`` table: insert, claim, renew, complete, stop.

Every state change is a conditional update, so two workers (a redelivered message, a retry
racing a slow first attempt) or a worker and a canceller never both win: whoever's condition
still holds writes, the other learns it lost and backs off.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text, update

from inference_platform import usage
from inference_platform.db.models import Request
from inference_platform.platform import Platform

RUNNING = ("queued", "in_progress")
# Job statuses that end it; "expired" is the job's own, a client sees "failed".
STOPPED = ("cancelled", "failed", "expired")


def now() -> datetime:
    return datetime.now(UTC)


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
) -> Request:
    """Write a queued job and commit it; the caller enqueues its id afterwards."""
    created = now()
    row = Request(
        id=id,
        owner=owner,
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
        # Counted as dispatched from the start: the sweeper re-enqueues if the message that
        # follows the commit is lost.
        dispatched_at=created,
        deadline=created + timedelta(seconds=deadline_seconds) if deadline_seconds else None,
    )
    with platform.db.session() as s:
        s.add(row)
    return row


def load(platform: Platform, request_id: str) -> Request | None:
    with platform.db.session() as s:
        return s.get(Request, request_id)


def claim(platform: Platform, request_id: str, lease_seconds: float) -> Request | None:
    """Take a queued job for one attempt; None when it is not (or no longer) queued."""
    stmt = (
        update(Request)
        .where(
            Request.id == request_id,
            Request.status == "queued",
            Request.batch_id.is_(None),
            (Request.deadline.is_(None)) | (Request.deadline > func.now()),
        )
        .values(
            status="in_progress",
            attempt=Request.attempt + 1,
            lease_until=func.now() + timedelta(seconds=lease_seconds),
            started_at=func.coalesce(Request.started_at, func.now()),
        )
        .returning(Request)
        .execution_options(synchronize_session=False)
    )
    with platform.db.session() as s:
        return s.scalars(stmt).first()


def renew(platform: Platform, held: dict[str, int], lease_seconds: float) -> set[str]:
    """Extend the leases of the jobs this process runs; returns the ids still ours."""
    if not held:
        return set()
    ids, attempts = list(held), [held[i] for i in held]
    stmt = text(
        "UPDATE requests r SET lease_until = now() + make_interval(secs => :lease) "
        "FROM unnest(CAST(:ids AS text[]), CAST(:attempts AS int[])) AS v(id, attempt) "
        "WHERE r.id = v.id AND r.attempt = v.attempt AND r.status = 'in_progress' "
        "RETURNING r.id"
    )
    with platform.db.session() as s:
        rows = s.execute(stmt, {"lease": lease_seconds, "ids": ids, "attempts": attempts})
        return {row[0] for row in rows}


def complete(
    platform: Platform,
    job: Request,
    *,
    status: str,
    result: dict[str, Any] | None,
    usage_row: dict[str, Any],
) -> bool:
    """Record the result of attempt ``job.attempt`` and bill it, in one transaction.

    False when the attempt no longer owns the job (cancelled, expired, or retried elsewhere).
    """
    stmt = (
        update(Request)
        .where(
            Request.id == job.id,
            Request.status == "in_progress",
            Request.attempt == job.attempt,
        )
        .values(
            status=status,
            result=result,
            status_code=200,
            lease_until=None,
            finished_at=func.now(),
        )
        .execution_options(synchronize_session=False)
    )
    with platform.db.session() as s:
        if s.execute(stmt).rowcount != 1:  # type: ignore[attr-defined]
            return False
        usage.record(s, [usage_row])
    return True


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
        return bool(s.execute(stmt).rowcount == 1)  # type: ignore[attr-defined]


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
