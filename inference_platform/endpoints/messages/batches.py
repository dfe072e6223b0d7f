"""Message Batches (``/v1/messages/batches``) on the platform's own batches.

Create writes the requests, translated to Chat bodies, as a batch input file and creates an
ordinary ``/v1/chat/completions`` batch from it in the 24 h window: the same validation,
admission, deadlines, durable lines, billing and sweeps as any batch. A ``message_batches``
row keyed by that input file marks the batch as a Message Batch; everything here is a view of
the batch and its request rows in Anthropic's shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, tuple_
from sqlalchemy.orm import Session

from inference_platform.batches import lifecycle
from inference_platform.db.models import Batch, MessageBatch
from inference_platform.endpoints.batches import serving as batch_serving
from inference_platform.endpoints.batches.protocol import BATCH_FINAL_STATUSES
from inference_platform.endpoints.messages import objects, translate
from inference_platform.endpoints.output_limits import check_output_limit
from inference_platform.errors import PlatformError, invalid, not_found
from inference_platform.files import store as files
from inference_platform.files.upload import store_lines
from inference_platform.generation import CHAT
from inference_platform.platform import Platform
from inference_platform.tiers import BATCH

WINDOW = "24h"
# request status -> Message Batch result type (and request_counts key)
_RESULTS = {
    "completed": "succeeded",
    "failed": "errored",
    "cancelled": "canceled",
    "expired": "expired",
}
# A batch cancelled or expired while validating ends with no request rows: every request
# then ended that way without running.
_ENDED_UNRUN = {"cancelled": "canceled", "expired": "expired"}


def _lines(platform: Platform, requests: list[dict[str, Any]]) -> list[bytes]:
    """The batch input file: one Chat line per request (checked here, so a 400 names it)."""
    out, first = [], requests[0]["params"]["model"]
    for index, item in enumerate(requests):
        params = item["params"]
        try:
            spec = platform.model(params["model"])
            if not spec.serves(BATCH):
                raise invalid(f"The model `{spec.name}` is not offered in the batch tier.")
            if params["model"] != first:
                # A batch runs on one model's batch queue (its deadline and capacity).
                raise invalid(
                    f"Every request of a Message Batch must use the same model here; the "
                    f"first uses `{first}`, this one `{params['model']}`. Send one batch per "
                    "model."
                )
            check_output_limit(spec, params)
            body = translate.chat_body(params)
        except PlatformError as err:
            err.param = f"requests[{index}].params.{err.param or 'model'}"
            raise
        body.pop("stream", None)
        line = {"custom_id": item["custom_id"], "method": "POST", "url": CHAT, "body": body}
        out.append(json.dumps(line, separators=(",", ":")).encode())
    return out


def _store_input(platform: Platform, owner: str, lines: list[bytes]) -> str:
    """The input file (counted for admission as an upload is) and its Message Batch mark."""
    with platform.db.session() as s:
        limit = platform.settings.max_file_bytes
        source = store_lines(s, owner, "message_batch.jsonl", lines, None, limit)
        s.add(MessageBatch(input_file_id=source.id, owner=owner, request_count=len(lines)))
        return source.id


def create(platform: Platform, owner: str, body: dict[str, Any], base: str) -> dict[str, Any]:
    requests = body["requests"]
    limit = platform.settings.batch_max_lines
    if len(requests) > limit:
        raise invalid(f"A batch holds at most {limit} requests.", param="requests")
    windows = platform.settings.window_seconds()
    window = WINDOW if WINDOW in windows else max(windows, key=lambda w: windows[w])
    file_id = _store_input(platform, owner, _lines(platform, requests))
    try:
        created = batch_serving.create(
            platform,
            owner,
            {"input_file_id": file_id, "endpoint": CHAT, "completion_window": window},
        )
    except PlatformError:  # refused (admission): the file made for it goes too
        files.delete(platform, owner, file_id)
        raise
    return retrieve(platform, owner, created["id"], base)


def _query(owner: str) -> Any:
    return (
        select(Batch, MessageBatch)
        .join(MessageBatch, MessageBatch.input_file_id == Batch.input_file_id)
        .where(Batch.owner == owner, MessageBatch.owner == owner, MessageBatch.deleted_at.is_(None))
    )


def _load(s: Session, owner: str, batch_id: str) -> tuple[Batch, MessageBatch]:
    found = s.execute(_query(owner).where(Batch.id == batch_id)).first()
    if found is None:
        raise not_found(f"No message batch found with id '{batch_id}'.")
    return found[0], found[1]


def _counts(s: Session, batch_ids: list[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {b: {} for b in batch_ids}
    rows = s.execute(
        text(
            "SELECT batch_id, status, count(*) FROM requests WHERE batch_id = ANY(:ids) "
            "GROUP BY batch_id, status"
        ),
        {"ids": batch_ids},
    )
    for batch_id, status, n in rows:
        out[batch_id][status] = int(n)
    return out


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _object(
    batch: Batch, mark: MessageBatch, statuses: dict[str, int], base: str
) -> dict[str, Any]:
    counts = {kind: statuses.get(status, 0) for status, kind in _RESULTS.items()}
    if batch.status == "failed":  # refused as a whole at validation: every request errored
        counts["errored"] = mark.request_count
    left = max(0, mark.request_count - sum(counts.values()))
    ended = batch.status in BATCH_FINAL_STATUSES
    if ended and batch.status in _ENDED_UNRUN:
        counts[_ENDED_UNRUN[batch.status]] += left
        left = 0
    counts["processing"] = left
    return {
        "id": batch.id,
        "type": "message_batch",
        "processing_status": (
            "ended" if ended else "canceling" if batch.status == "cancelling" else "in_progress"
        ),
        "request_counts": counts,
        "created_at": _time(batch.created_at),
        "expires_at": _time(batch.expires_at),
        "ended_at": _time(
            batch.completed_at or batch.cancelled_at or batch.expired_at or batch.failed_at
        ),
        "cancel_initiated_at": _time(batch.cancelling_at),
        "archived_at": None,
        "results_url": f"{base}/{batch.id}/results" if ended else None,
    }


def _render(s: Session, found: list[tuple[Batch, MessageBatch]], base: str) -> list[dict[str, Any]]:
    counts = _counts(s, [b.id for b, _ in found])
    return [_object(b, m, counts[b.id], base) for b, m in found]


def retrieve(platform: Platform, owner: str, batch_id: str, base: str) -> dict[str, Any]:
    with platform.db.session() as s:
        return _render(s, [_load(s, owner, batch_id)], base)[0]


def list_batches(
    platform: Platform,
    owner: str,
    base: str,
    *,
    limit: int,
    before_id: str | None = None,
    after_id: str | None = None,
) -> dict[str, Any]:
    """Newest first: ``after_id`` pages towards older batches, ``before_id`` towards newer."""
    with platform.db.session() as s:
        query = _query(owner)
        cursor_id = after_id or before_id
        newest_first = before_id is None
        if cursor_id:
            cursor, _ = _load(s, owner, cursor_id)
            key, at = tuple_(Batch.created_at, Batch.id), tuple_(cursor.created_at, cursor.id)
            query = query.where(key < at if after_id else key > at)
        order = (Batch.created_at.desc(), Batch.id.desc())
        if not newest_first:
            order = (Batch.created_at.asc(), Batch.id.asc())
        found = [(r[0], r[1]) for r in s.execute(query.order_by(*order).limit(limit + 1))]
        page = found[:limit] if newest_first else list(reversed(found[:limit]))
        data = _render(s, page, base)
    return {
        "data": data,
        "has_more": len(found) > limit,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def cancel(platform: Platform, owner: str, batch_id: str, base: str) -> dict[str, Any]:
    with platform.db.session() as s:
        batch, _ = _load(s, owner, batch_id)
        status = batch.status
    if status not in BATCH_FINAL_STATUSES and status != "cancelling":
        lifecycle.cancel(platform, owner, batch_id)
    return retrieve(platform, owner, batch_id, base)


def delete(platform: Platform, owner: str, batch_id: str) -> dict[str, Any]:
    """Only an ended batch can be deleted; its results go with it."""
    with platform.db.session() as s:
        batch, mark = _load(s, owner, batch_id)
        if batch.status not in BATCH_FINAL_STATUSES:
            raise invalid(
                f"Message batch '{batch_id}' has not ended; cancel it first, then delete it."
            )
        mark.deleted_at = func.now()
    return {"id": batch_id, "type": "message_batch_deleted"}


def _result(row: Any) -> dict[str, Any]:
    kind = _RESULTS.get(row.status, "errored")
    result: dict[str, Any] = {"type": kind}
    if kind == "succeeded":
        result["message"] = objects.from_completion(row.result, tier=BATCH)
    elif kind == "errored":
        error = (row.result or {}).get("error") or row.error or {}
        status = row.status_code or 500
        result["error"] = objects.error_envelope(status, error.get("message") or "failed")
    return {"custom_id": row.custom_id, "result": result}


def results(platform: Platform, owner: str, batch_id: str) -> Iterator[str]:
    """JSONL, one line per request in input order; 400 until the batch has ended."""
    with platform.db.session() as s:
        batch, _ = _load(s, owner, batch_id)
        if batch.status not in BATCH_FINAL_STATUSES:
            raise invalid(f"Message batch '{batch_id}' has not ended; its results come then.")
        unrun = _ENDED_UNRUN.get(batch.status)
        input_file_id = batch.input_file_id
    sql = text(
        "SELECT custom_id, status, status_code, result, error FROM requests "
        "WHERE batch_id = :b ORDER BY line_no"
    )

    def lines() -> Iterator[str]:
        with platform.db.engine.connect() as conn:
            rows = conn.execution_options(stream_results=True, yield_per=1000).execute(
                sql, {"b": batch_id}
            )
            written = 0
            for row in rows:
                written += 1
                yield json.dumps(_result(row), separators=(",", ":")) + "\n"
        if written == 0 and unrun is not None:
            yield from _unrun_results(platform, input_file_id, unrun)

    return lines()


def _unrun_results(platform: Platform, input_file_id: str, kind: str) -> Iterator[str]:
    """One ``canceled`` or ``expired`` result per request of a batch that ended before any
    of them was queued, in request order (the input file is written by ``create``)."""
    for raw in files.upload_lines(platform, input_file_id):
        if raw.strip():
            line = {"custom_id": json.loads(raw)["custom_id"], "result": {"type": kind}}
            yield json.dumps(line, separators=(",", ":")) + "\n"
