"""Limits on durable work, counted in Postgres (its source of truth): flex requests waiting
and batch lines enqueued. Counts stop at the limit, so they stay cheap at any depth. Two
admissions racing may both pass at the edge; the overshoot is at most one request or batch
per API process."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from inference_platform.db.models import File, Request
from inference_platform.errors import PlatformError
from inference_platform.limits.headers import retry_headers


def _count(session: Session, *conditions: object, cap: int) -> int:
    inner = select(Request.id).where(*conditions).limit(cap).subquery()  # type: ignore[arg-type]
    return int(session.execute(select(func.count()).select_from(inner)).scalar_one())


def check_flex(session: Session, tenant: str, model: str, limit: int, retry_after: int) -> None:
    """429 when ``tenant`` already has ``limit`` flex requests waiting for ``model``."""
    if limit <= 0:
        return
    waiting = _count(
        session,
        Request.owner == tenant,
        Request.model == model,
        Request.tier == "flex",
        Request.status == "queued",
        cap=limit,
    )
    if waiting >= limit:
        raise PlatformError(
            429,
            f"Tenant {tenant} has {waiting} flex requests waiting for {model}, its limit. "
            f"Try again in {retry_after} s.",
            code="rate_limit_exceeded",
            headers=retry_headers(retry_after),
        )


def check_batch(session: Session, tenant: str, input_file_id: str, limit: int) -> None:
    """Refuse a batch whose lines would take ``tenant`` past ``limit`` enqueued lines."""
    if limit <= 0:
        return
    upload = session.scalar(
        select(File).where(File.id == input_file_id, File.owner == tenant, File.kind == "upload")
    )
    if upload is None or upload.line_count is None:
        return  # the batch's own checks answer for a missing file
    enqueued = _count(
        session,
        Request.owner == tenant,
        Request.tier == "batch",
        Request.status.in_(("queued", "in_progress")),
        cap=limit + 1,
    )
    if enqueued + upload.line_count > limit:
        raise PlatformError(
            429,
            f"Enqueued batch lines limit reached: tenant {tenant} has {enqueued} batch lines "
            f"queued or running and this file has {upload.line_count}; the limit is {limit}. "
            "Wait for running batches to finish, or split the file.",
            code="rate_limit_exceeded",
            param="input_file_id",
            # The SDK's quick retries cannot help: lines drain over minutes or hours.
            headers={"x-should-retry": "false"},
        )
