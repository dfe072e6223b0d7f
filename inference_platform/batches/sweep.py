"""The batch lifecycle's part of the sweeper (``jobs.sweep`` runs ``PARTS``).

Lines whose worker died are the durable-work core's, like any lapsed lease; here:

* a validation whose message was lost or whose control worker died is sent again;
* batches past their window expire;
* batches with nothing left to run are finalised (a lost finalise message changes nothing);
* expired uploads lose their bytes;
* realtime usage a worker spooled during a database outage is recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import text

from inference_platform import usage_spool
from inference_platform.batches import lifecycle
from inference_platform.batches.service import enqueue_validation
from inference_platform.metrics import sweep as sweep_metrics
from inference_platform.platform import Platform

log = logging.getLogger(__name__)


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
            sweep_metrics.swept("batch_expired", 1)


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


def record_spooled_usage(platform: Platform) -> None:
    """Usage the workers on this host spooled while Postgres was away."""
    usage_spool.drain(platform.settings.var_path, platform.db)


# Run by the sweeper (``jobs.sweep``), in this order.
PARTS: tuple[Callable[[Platform], None], ...] = (
    revalidate,
    expire_batches,
    finalize_idle,
    purge_files,
    record_spooled_usage,
)
