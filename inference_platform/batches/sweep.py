"""The batch part of the sweeper: repair every gap from Postgres, the source of truth.

* a validation whose message was lost or whose control worker died is sent again;
* lines whose worker died (lease lapsed) are queued again, or fail after ``attempt_cap``;
* batches past their window expire;
* batches with nothing left to run are finalised (a lost finalise message changes nothing);
* expired uploads lose their bytes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from sqlalchemy import text

from inference_platform.batches import lifecycle, rows
from inference_platform.batches.service import enqueue_validation
from inference_platform.platform import Platform

log = logging.getLogger(__name__)

LOST_MESSAGE = "The worker running this request stopped {n} times; it was not retried again."


def sweep(platform: Platform) -> None:
    parts: list[Callable[[Platform], None]] = [
        revalidate,
        lapsed_leases,
        expire_batches,
        finalize_idle,
        purge_files,
    ]
    for part in parts:
        try:
            part(platform)
        except Exception:  # one failing part must not stop the others
            log.exception("batch sweep part %s failed", part.__name__)


def revalidate(platform: Platform) -> None:
    """Validations not running (no live lease) and not sent recently are sent again."""
    with platform.db.session() as s:
        stuck = list(
            s.scalars(
                text(
                    "UPDATE batches SET dispatched_at = now() WHERE status = 'validating' "
                    "AND (lease_until IS NULL OR lease_until < now()) "
                    "AND (dispatched_at IS NULL OR "
                    "dispatched_at < now() - make_interval(secs => :grace)) RETURNING id"
                ),
                {"grace": platform.settings.dispatch_grace_seconds},
            )
        )
    for batch_id in stuck:
        log.info("re-sending validation of batch %s", batch_id)
        enqueue_validation(platform, batch_id)


def lapsed_leases(platform: Platform) -> None:
    """Lines whose worker stopped renewing: back to the queue, or failed past the cap."""
    cap = platform.settings.attempt_cap
    with platform.db.session() as s:
        requeued = rows.rowcount(
            s.execute(
                text(
                    "UPDATE requests SET status = 'queued', lease_until = NULL "
                    "WHERE tier = 'batch' AND status = 'in_progress' AND lease_until < now() "
                    "AND attempt < :cap"
                ),
                {"cap": cap},
            )
        )
        over = list(
            s.scalars(
                text(
                    "SELECT DISTINCT batch_id FROM requests WHERE tier = 'batch' "
                    "AND status = 'in_progress' AND lease_until < now() AND attempt >= :cap"
                ),
                {"cap": cap},
            )
        )
    if requeued:
        log.info("requeued %d batch lines whose worker stopped", requeued)
    for batch_id in over:
        _fail_over_cap(platform, batch_id, cap)
        lifecycle.finalize(platform, batch_id)


def _fail_over_cap(platform: Platform, batch_id: str, cap: int) -> None:
    error = {"code": "server_error", "message": LOST_MESSAGE.format(n=cap)}
    with platform.db.session() as s:
        rows.lock_batches(s, [batch_id])
        failed = rows.rowcount(
            s.execute(
                text(
                    "UPDATE requests SET status = 'failed', error = CAST(:e AS jsonb), "
                    "result = NULL, status_code = NULL, lease_until = NULL, finished_at = now(), "
                    "result_seq = nextval('request_result_seq') WHERE batch_id = :b "
                    "AND status = 'in_progress' AND lease_until < now() AND attempt >= :cap"
                ),
                {"e": json.dumps(error), "b": batch_id, "cap": cap},
            )
        )
        if failed:
            rows.ensure_result_files(s, batch_id, output=False, error=True)
            log.warning("batch %s: %d lines failed after %d attempts", batch_id, failed, cap)


def expire_batches(platform: Platform) -> None:
    with platform.db.session() as s:
        due = list(
            s.scalars(
                text(
                    "SELECT id FROM batches WHERE status IN ('validating', 'in_progress') "
                    "AND expires_at < now()"
                )
            )
        )
    for batch_id in due:
        if lifecycle.expire(platform, batch_id):
            log.info("batch %s expired", batch_id)


def finalize_idle(platform: Platform) -> None:
    """Finalise batches whose last line finished (covers lost finalise messages)."""
    with platform.db.session() as s:
        idle = list(
            s.scalars(
                text(
                    "SELECT b.id FROM batches b WHERE b.status IN ('finalizing', 'cancelling') "
                    "OR (b.status = 'in_progress' AND NOT EXISTS (SELECT 1 FROM requests r "
                    "WHERE r.batch_id = b.id AND r.status IN ('queued', 'in_progress')))"
                )
            )
        )
    for batch_id in idle:
        lifecycle.finalize(platform, batch_id)


def purge_files(platform: Platform) -> None:
    """Uploads past their ``expires_at`` are deleted (a few at a time)."""
    with platform.db.session() as s:
        s.execute(
            text(
                "WITH gone AS (UPDATE files SET deleted_at = now() WHERE id IN ("
                "SELECT id FROM files WHERE deleted_at IS NULL AND expires_at < now() LIMIT 100) "
                "RETURNING id) DELETE FROM file_chunks WHERE file_id IN (SELECT id FROM gone)"
            )
        )
