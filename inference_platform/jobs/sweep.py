"""The sweeper's part for durable jobs outside batches (background responses, flex).

Each step repairs one gap, with conditional updates and ``SKIP LOCKED`` so several control
processes may sweep at once:

* past their deadline: expired, keeping any output already produced;
* a lapsed lease (the worker died or stalled): queued again, or failed at the attempt cap;
* queued but not picked up within the dispatch grace (a lost message, a broker restart):
  published again, but only as many as the queue is missing, so a long but healthy queue is
  not flooded with duplicates.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import text

from inference_platform.celery_app import queue_name
from inference_platform.jobs import dispatch
from inference_platform.jobs.finish import finalize
from inference_platform.platform import Platform

log = logging.getLogger(__name__)

_BATCH = 500


def sweep(platform: Platform) -> None:
    expire_overdue(platform)
    recover_lapsed(platform)
    redispatch_stale(platform)


def _execute(platform: Platform, sql: str, params: dict[str, Any]) -> list[Any]:
    with platform.db.session() as s:
        return list(s.execute(text(sql), params))


def expire_overdue(platform: Platform) -> list[str]:
    error = {
        "code": "server_error",
        "message": "The request could not be processed before its deadline; "
        "retry it later or use the default service tier.",
        "param": None,
    }
    rows = _execute(
        platform,
        "WITH due AS (SELECT id FROM requests WHERE batch_id IS NULL "
        "AND status IN ('queued', 'in_progress') AND deadline < now() "
        "ORDER BY deadline LIMIT :n FOR UPDATE SKIP LOCKED) "
        "UPDATE requests r SET status = 'expired', lease_until = NULL, finished_at = now(), "
        "status_code = 504, error = CAST(:error AS JSONB) FROM due WHERE r.id = due.id "
        "RETURNING r.id",
        {"n": _BATCH, "error": json.dumps(error)},
    )
    ids = [row[0] for row in rows]
    for request_id in ids:
        platform.events.cancel(request_id)  # a worker still running it stops
        finalize(platform, request_id)
    if ids:
        log.info("expired %d jobs past their deadline", len(ids))
    return ids


def recover_lapsed(platform: Platform) -> tuple[list[str], list[str]]:
    """Lapsed leases: retry below the attempt cap, fail at it. Returns (retried, failed)."""
    cap = platform.settings.attempt_cap
    error = {
        "code": "server_error",
        "message": f"The worker running this request was lost {cap} times; giving up.",
        "param": None,
    }
    rows = _execute(
        platform,
        "WITH lapsed AS (SELECT id FROM requests WHERE batch_id IS NULL "
        "AND status = 'in_progress' AND lease_until < now() "
        "ORDER BY lease_until LIMIT :n FOR UPDATE SKIP LOCKED) "
        "UPDATE requests r SET "
        "status = CASE WHEN r.attempt < :cap THEN 'queued' ELSE 'failed' END, "
        "lease_until = NULL, dispatched_at = now(), "
        "error = CASE WHEN r.attempt < :cap THEN NULL ELSE CAST(:error AS JSONB) END, "
        "status_code = CASE WHEN r.attempt < :cap THEN NULL ELSE 500 END, "
        "finished_at = CASE WHEN r.attempt < :cap THEN NULL ELSE now() END "
        "FROM lapsed WHERE r.id = lapsed.id RETURNING r.id, r.status, r.tier, r.model",
        {"n": _BATCH, "cap": cap, "error": json.dumps(error)},
    )
    retried, failed = [], []
    for request_id, status, tier, model in rows:
        if status == "queued":
            dispatch.send(platform, tier, model, request_id)
            retried.append(request_id)
        else:
            finalize(platform, request_id)
            failed.append(request_id)
    if rows:
        log.info("lapsed leases: %d retried, %d failed", len(retried), len(failed))
    return retried, failed


def redispatch_stale(platform: Platform) -> list[str]:
    grace = platform.settings.dispatch_grace_seconds
    groups = _execute(
        platform,
        "SELECT tier, model, count(*) AS queued, count(*) FILTER "
        "(WHERE dispatched_at < now() - make_interval(secs => :grace)) AS stale "
        "FROM requests WHERE batch_id IS NULL AND status = 'queued' GROUP BY tier, model",
        {"grace": grace},
    )
    sent: list[str] = []
    for tier, model, queued, stale in groups:
        if not stale:
            continue
        missing = queued - dispatch.backlog(platform, queue_name(tier, model))
        if missing <= 0:
            continue
        rows = _execute(
            platform,
            "WITH pick AS (SELECT id FROM requests WHERE batch_id IS NULL "
            "AND status = 'queued' AND tier = :tier AND model = :model "
            "AND dispatched_at < now() - make_interval(secs => :grace) "
            "ORDER BY dispatched_at LIMIT :n FOR UPDATE SKIP LOCKED) "
            "UPDATE requests r SET dispatched_at = now() FROM pick WHERE r.id = pick.id "
            "RETURNING r.id",
            {"tier": tier, "model": model, "grace": grace, "n": min(stale, missing)},
        )
        for (request_id,) in rows:
            dispatch.send(platform, tier, model, request_id)
            sent.append(request_id)
    if sent:
        log.info("re-enqueued %d jobs that no worker picked up", len(sent))
    return sent
