"""Stored responses: look-up by owner, the Response object of a row, cancel, delete, items.

Every read filters by owner; another tenant's id is indistinguishable from a missing one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from inference_platform import jobs
from inference_platform.db.models import Request
from inference_platform.endpoints.protocol import Page
from inference_platform.endpoints.responses import inputs, protocol
from inference_platform.errors import PlatformError, invalid, not_found
from inference_platform.generation import RESPONSES
from inference_platform.jobs import follow, results
from inference_platform.platform import Platform
from inference_platform.tiers import REALTIME


def _missing(response_id: str, param: str | None = None) -> PlatformError:
    return not_found(f"No response found with id '{response_id}'.", param=param)


def load(platform: Platform, owner: str, response_id: str, *, param: str | None = None) -> Request:
    """A stored, undeleted response of ``owner`` or 404."""
    with platform.db.session() as s:
        row = s.scalars(
            select(Request).where(
                Request.id == response_id,
                Request.owner == owner,
                Request.endpoint == RESPONSES,
                Request.store.is_(True),
                Request.deleted_at.is_(None),
            )
        ).first()
    if row is None:
        raise _missing(response_id, param)
    return row


def base_object(row: Request) -> dict[str, Any]:
    """The response as created: the template every stream event is built from."""
    status = "queued" if row.background else "in_progress"
    return protocol.response(
        id=row.id, created_at=results.created_at(row), body=row.body, status=status
    )


def to_object(row: Request) -> dict[str, Any]:
    """What ``GET /v1/responses/{id}`` returns for a row in any state."""
    if row.result is not None and row.status not in jobs.RUNNING:
        return row.result
    obj = base_object(row)
    if row.status in jobs.RUNNING:
        obj["status"] = row.status
    else:  # stopped, its object not written yet
        obj["status"] = "failed" if row.status == "expired" else row.status
        if row.error:
            obj["error"] = protocol.response_error(row.status_code, row.error.get("message", ""))
    return obj


def current_object(platform: Platform, row: Request) -> dict[str, Any]:
    """Like ``to_object``, for a row just stopped by someone else: its object may still be
    on its way to the row but is already in the channel's terminal event."""
    if row.result is None and row.status in jobs.STOPPED:
        end = follow.terminal(platform, row.id)
        if end is None:
            # Stopped an instant ago and not sealed yet by whoever stopped it: seal it now
            # (idempotent), so the reader gets the output kept so far, not an empty object.
            jobs.seal(platform, row.id)
            end = follow.terminal(platform, row.id)
        kept = follow.final_object(end) if end else None
        if kept is not None:
            return kept
    return to_object(row)


def save_finished(
    platform: Platform, *, owner: str, body: dict[str, Any], result: dict[str, Any]
) -> None:
    """Keep a realtime response the client waited for (``store`` defaults to true)."""
    values = {
        "id": result["id"],
        "owner": owner,
        "tier": REALTIME,
        "endpoint": RESPONSES,
        "model": result["model"],
        "status": result["status"],
        "body": body,
        "result": result,
        "status_code": 200,
        "priority": 0,
        "attempt": 1,
        "background": False,
        "stream": bool(body.get("stream")),
        "store": True,
        "previous_response_id": body.get("previous_response_id"),
        "started_at": func.now(),
        "finished_at": func.now(),
    }
    with platform.db.session() as s:
        s.execute(insert(Request).values(**values).on_conflict_do_nothing(index_elements=["id"]))


def previous(
    platform: Platform, owner: str, response_id: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The body and output items of the response a new one continues (404 if not ours)."""
    row = load(platform, owner, response_id, param="previous_response_id")
    if row.status in jobs.RUNNING:
        raise invalid(
            f"Response '{response_id}' has not finished yet; wait for it before continuing.",
            param="previous_response_id",
        )
    return row.body, list((row.result or {}).get("output") or [])


def cancel(platform: Platform, owner: str, response_id: str) -> dict[str, Any]:
    """Cancel a background response: idempotent, keeps the output produced so far."""
    row = load(platform, owner, response_id)
    if not row.background:
        raise invalid("Only background responses can be cancelled.", param="response_id")
    if row.status in jobs.RUNNING:
        jobs.stop(platform, response_id, status="cancelled")
        row = load(platform, owner, response_id)
    return current_object(platform, row)


def delete(platform: Platform, owner: str, response_id: str) -> dict[str, Any]:
    row = load(platform, owner, response_id)
    if row.status in jobs.RUNNING:
        jobs.stop(platform, response_id, status="cancelled")
    with platform.db.session() as s:
        s.execute(
            update(Request)
            .where(Request.id == row.id, Request.owner == owner)
            .values(deleted_at=func.now())
        )
    return protocol.deleted(response_id)


def input_items(
    platform: Platform,
    owner: str,
    response_id: str,
    *,
    after: str | None,
    limit: int,
    order: str,
) -> Page:
    row = load(platform, owner, response_id)
    return inputs.page(inputs.stored_items(row.body), after=after, limit=limit, order=order)
