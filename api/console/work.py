"""A tenant's work: batches (list, detail with per-line errors, cancel, retry, result files)
and recent flex and background responses. Every read and action goes through the serving
functions the API's own views call, with the session's tenant as owner."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from api.console import session
from api.console.web import bp, owner, tenant_page
from api.context import platform
from inference_platform.endpoints.batches import serving as batches
from inference_platform.endpoints.batches.protocol import BATCH_FINAL_STATUSES
from inference_platform.endpoints.files import serving as files
from inference_platform.endpoints.responses import recent
from inference_platform.endpoints.responses import serving as responses
from inference_platform.endpoints.responses.inputs import output_text
from inference_platform.errors import PlatformError
from inference_platform.jobs import RUNNING

# Lines of the error file shown on a batch's page (the file itself has them all).
ERROR_LINES_SHOWN = 100
PAGE_SIZE = 50


# Statuses whose failed lines were closed unanswered (cancelled, expired), not processed.
_CLOSED_UNANSWERED = ("cancelling", "cancelled", "expired")


def progress(batch: dict[str, Any]) -> dict[str, int]:
    """Lines done of the total, and the percentage, for the bar: completed or failed while the
    batch runs; only completed once it was cancelled or expired, so a batch closed with its
    lines unanswered does not read as finished work."""
    counts = batch.get("request_counts") or {}
    total = int(counts.get("total") or 0)
    done = int(counts.get("completed") or 0)
    if batch["status"] not in _CLOSED_UNANSWERED:
        done += int(counts.get("failed") or 0)
    percent = 100 if batch["status"] == "completed" else (100 * done // total if total else 0)
    return {"total": total, "done": done, "percent": percent}


@bp.get("/batches")
@tenant_page
def batches_page() -> str:
    """The tenant's batches, newest first, refreshed while any of them runs."""
    found = batches.list_batches(
        platform(), owner(), after=request.args.get("after") or None, limit=PAGE_SIZE
    )
    rows = list(found["data"])
    running = any(b["status"] not in BATCH_FINAL_STATUSES for b in rows)
    return render_template(
        "console/batches.html",
        batches=rows,
        progress=progress,
        has_more=found["has_more"],
        running=running,
    )


def _error_lines(batch: dict[str, Any]) -> list[dict[str, Any]]:
    """The first lines of the batch's error file: custom id, status code, message."""
    if not batch.get("error_file_id"):
        return []
    content = files.content(platform(), owner(), batch["error_file_id"], limit=ERROR_LINES_SHOWN)
    out = []
    for raw in content.body:
        line = json.loads(raw)
        response = line.get("response") or {}
        error = line.get("error") or (response.get("body") or {}).get("error") or {}
        out.append(
            {
                "custom_id": line.get("custom_id"),
                "status_code": response.get("status_code"),
                "code": error.get("code"),
                "message": error.get("message"),
            }
        )
    return out


@bp.get("/batches/<batch_id>")
@tenant_page
def batch_page(batch_id: str) -> str:
    """One batch: progress, ETA, times, validation errors and failed lines, actions."""
    batch = batches.retrieve(platform(), owner(), batch_id)
    return render_template(
        "console/batch.html",
        batch=batch,
        bar=progress(batch),
        running=batch["status"] not in BATCH_FINAL_STATUSES,
        validation_errors=(batch.get("errors") or {}).get("data") or [],
        error_lines=_error_lines(batch),
    )


@bp.post("/batches/<batch_id>/cancel")
@tenant_page
def batch_cancel(batch_id: str) -> BaseResponse:
    """Cancel; lines already done stay in the output file."""
    try:
        batches.cancel(platform(), owner(), batch_id)
        session.flash(f"Cancelling {batch_id}; lines already done stay in its output file.")
    except PlatformError as err:
        if err.status == 404:
            raise
        session.flash(err.message, "error")
    return redirect(url_for("console.batch_page", batch_id=batch_id))


@bp.post("/batches/<batch_id>/retry")
@tenant_page
def batch_retry(batch_id: str) -> BaseResponse:
    """A new batch of the lines that failed, expired or were cancelled, in the same window
    (``POST /v1/batches/{id}/retry``)."""
    try:
        made = batches.retry(platform(), owner(), batch_id)
    except PlatformError as err:
        if err.status == 404:
            raise
        session.flash(err.message, "error")
        return redirect(url_for("console.batch_page", batch_id=batch_id))
    session.flash(f"Retrying the failed lines of {batch_id} as {made['id']}.")
    return redirect(url_for("console.batch_page", batch_id=made["id"]))


@bp.get("/files/<file_id>/content")
@tenant_page
def file_download(file_id: str) -> Response:
    """A file of the tenant's (a batch's output or errors), as an attachment."""
    found = files.content(platform(), owner(), file_id)
    headers = {**found.headers, "Content-Disposition": f'attachment; filename="{file_id}.jsonl"'}
    return Response(found.body, mimetype=found.mimetype, headers=headers)


@bp.get("/responses")
@tenant_page
def responses_page() -> str:
    """Recent flex and background responses, refreshed while any of them runs."""
    found = recent.recent(platform(), owner(), limit=PAGE_SIZE)
    running = any(r["status"] in RUNNING for r in found)
    return render_template("console/responses.html", responses=found, running=running)


@bp.get("/responses/<response_id>")
@tenant_page
def response_page(response_id: str) -> str:
    """One response: its status, tier, usage and output, as the API returns it."""
    obj = responses.retrieve(platform(), owner(), response_id, stream=False, starting_after=None)
    assert isinstance(obj, dict)
    return render_template(
        "console/response.html",
        response=obj,
        text=output_text(obj),
        running=obj["status"] in RUNNING,
        raw=json.dumps(obj, indent=2),
    )
