"""The sweeper: Postgres is the source of truth, Celery messages are hints.

Runs periodically on the control role. Each part repairs one kind of gap, with conditional
updates and ``SKIP LOCKED`` so several control processes may sweep at once:

* jobs past their deadline: expired, keeping any output already produced;
* lapsed leases (the worker died or stalled), jobs and batch lines alike: queued again, or
  failed at the attempt cap;
* the batch lifecycle's own repairs (``batches.sweep``): lost validations, expired windows,
  batches left to finalise, expired uploads.

Queued work that no worker was told about is the dispatcher's (``dispatch``), every second.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from inference_platform.batches import lifecycle, rows
from inference_platform.batches import sweep as batch_sweep
from inference_platform.jobs import dispatch
from inference_platform.jobs.finish import seal
from inference_platform.metrics import sweep as sweep_metrics
from inference_platform.platform import Platform

log = logging.getLogger(__name__)

_BATCH = 500


def sweep(platform: Platform) -> None:
    parts: list[Callable[[Platform], Any]] = [
        expire_overdue,
        recover_lapsed,
        *batch_sweep.PARTS,
    ]
    for part in parts:
        try:
            part(platform)
        except Exception:  # one failing part must not stop the others
            log.exception("sweep part %s failed", part.__name__)


def _execute(platform: Platform, sql: str, params: dict[str, Any]) -> list[Any]:
    with platform.db.session() as s:
        return list(s.execute(text(sql), params))


def expire_overdue(platform: Platform) -> list[str]:
    """Jobs past their deadline (a batch's lines expire with their batch)."""
    error = {
        "code": "server_error",
        "message": "The request could not be processed before its deadline; "
        "retry it later or use the default service tier.",
        "param": None,
    }
    found = _execute(
        platform,
        "WITH due AS (SELECT id FROM requests WHERE batch_id IS NULL "
        "AND status IN ('queued', 'in_progress') AND deadline < now() "
        "ORDER BY deadline LIMIT :n FOR UPDATE SKIP LOCKED) "
        "UPDATE requests r SET status = 'expired', lease_until = NULL, finished_at = now(), "
        "status_code = 504, error = CAST(:error AS JSONB) FROM due WHERE r.id = due.id "
        "RETURNING r.id",
        {"n": _BATCH, "error": json.dumps(error)},
    )
    ids = [row[0] for row in found]
    sweep_metrics.swept("expired", len(ids))
    for request_id in ids:
        platform.events.cancel(request_id)  # a worker still running it stops
        seal(platform, request_id)
    if ids:
        log.info("expired %d jobs past their deadline", len(ids))
    return ids


_LAPSED = """
    WITH lapsed AS (
        SELECT id FROM requests
        WHERE status = 'in_progress' AND lease_until < now()
          AND (attempt < :cap OR batch_id IS NULL OR batch_id = ANY(:locked))
          -- After a database restart every lease has lapsed while nobody could renew it:
          -- give the workers a lease's time to renew before calling their work lost.
          AND pg_postmaster_start_time() < now() - make_interval(secs => :lease)
        ORDER BY lease_until LIMIT :n FOR UPDATE SKIP LOCKED
    )
    UPDATE requests r SET
        status = CASE WHEN r.attempt < :cap THEN 'queued' ELSE 'failed' END,
        lease_until = NULL, dispatched_at = now(),
        error = CASE WHEN r.attempt < :cap THEN NULL ELSE CAST(:error AS JSONB) END,
        status_code = CASE WHEN r.attempt < :cap OR r.batch_id IS NOT NULL THEN NULL
                           ELSE 500 END,
        finished_at = CASE WHEN r.attempt < :cap THEN NULL ELSE now() END,
        result_seq = CASE WHEN r.attempt < :cap OR r.batch_id IS NULL THEN NULL
                          ELSE nextval('request_result_seq') END
    FROM lapsed WHERE r.id = lapsed.id
    RETURNING r.id, r.status, r.tier, r.model, r.batch_id
"""


def recover_lapsed(platform: Platform) -> tuple[list[str], list[str]]:
    """Lapsed leases: retry below the attempt cap, fail at it. Returns (retried, failed)."""
    cap = platform.settings.attempt_cap
    error = {
        "code": "server_error",
        "message": f"The worker running this request was lost {cap} times; giving up.",
        "param": None,
    }
    with platform.db.session() as s:
        # Lines failing here get a result sequence number: take their batches' locks first
        # (the documented lock order), and leave lines of other batches to the next sweep.
        over = s.scalars(
            text(
                "SELECT DISTINCT batch_id FROM requests WHERE status = 'in_progress' "
                "AND lease_until < now() AND attempt >= :cap AND batch_id IS NOT NULL"
            ),
            {"cap": cap},
        ).all()
        rows.lock_batches(s, over)
        params = {
            "n": _BATCH,
            "cap": cap,
            "error": json.dumps(error),
            "locked": list(over),
            "lease": platform.settings.lease_seconds,
        }
        changed = s.execute(text(_LAPSED), params).all()
        failed_batches = {b for _id, status, _t, _m, b in changed if b and status == "failed"}
        for batch_id in failed_batches:
            rows.ensure_result_files(s, batch_id, output=False, error=True)
    retried, failed, queues = [], [], set()
    for request_id, status, tier, model, batch_id in changed:
        if status == "queued":
            retried.append(request_id)
            queues.add((tier, model))
        else:
            failed.append(request_id)
            if batch_id is None:
                seal(platform, request_id)
    for tier, model in queues:
        dispatch.hint(platform, tier, model)
    for batch_id in failed_batches:
        lifecycle.finalize(platform, batch_id)
    sweep_metrics.swept("requeued", len(retried))
    sweep_metrics.swept("failed_at_cap", len(failed))
    if changed:
        log.info("lapsed leases: %d retried, %d failed", len(retried), len(failed))
    return retried, failed
