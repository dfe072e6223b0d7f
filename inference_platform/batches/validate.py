"""Validation of a batch's input file, on the control role.

The file is streamed from its chunks line by line; good lines are inserted as request rows
with COPY while reading, all in one transaction that commits together with the batch's move
to ``in_progress``. A file with any bad line rolls that transaction back and fails the batch
with every error (up to a cap) and its line number. The validator holds a lease on the batch
so the sweeper can restart a validation whose worker died.

Only a service outage (Postgres or Redis away) leaves the batch ``validating`` for another try;
any other error while reading is about the file itself and would happen again on every try, so
it fails the batch with the line it was on, never a retry loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import psycopg2
import redis
from sqlalchemy import exc as sa_exc
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from inference_platform.batches.lines import BodyCheck, LineError, LineValidator
from inference_platform.batches.objects import usage_object
from inference_platform.batches.rows import RowCopier
from inference_platform.db.models import Batch, File
from inference_platform.endpoints.output_limits import check_output_limit
from inference_platform.files.store import upload_lines
from inference_platform.generation import EMBEDDINGS
from inference_platform.jobs import dispatch
from inference_platform.platform import Platform
from inference_platform.tiers import BATCH
from inference_platform.webhooks import outbox as webhooks

log = logging.getLogger(__name__)

# Errors that mean "a service is away, try again later", not "this file is bad".
TRANSIENT: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    psycopg2.OperationalError,
    psycopg2.InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)

_CLAIM = text(
    "UPDATE batches SET lease_until = now() + make_interval(secs => :lease) "
    "WHERE id = :id AND status = 'validating' "
    "AND (lease_until IS NULL OR lease_until < now()) RETURNING id"
)
_RENEW = text(
    "UPDATE batches SET lease_until = now() + make_interval(secs => :lease) "
    "WHERE id = :id AND status = 'validating' RETURNING id"
)


class _Abandon(Exception):
    """The batch left ``validating`` (cancelled, expired) while we read it."""


class _Invalid(Exception):
    def __init__(self, errors: list[dict[str, object]]) -> None:
        super().__init__("invalid input file")
        self.errors = errors


def validate(platform: Platform, batch_id: str, checks: Mapping[str, BodyCheck]) -> str | None:
    """Validate and enqueue a batch; returns its new status (None when another validator
    holds it or it is no longer validating)."""
    lease = platform.settings.lease_seconds
    with platform.db.session() as s:
        if s.execute(_CLAIM, {"id": batch_id, "lease": lease}).first() is None:
            return None
        batch = s.get(Batch, batch_id)
        assert batch is not None
        source = s.scalar(
            select(File.id).where(
                File.id == batch.input_file_id,
                File.owner == batch.owner,
                File.deleted_at.is_(None),
                File.kind == "upload",
            )
        )
    check = checks.get(batch.endpoint)
    validator = LineValidator(
        batch.endpoint,
        _fits_model(platform, check) if check else (lambda body: body),
        lambda m: _serves(platform, m, batch.endpoint),
        platform.settings.batch_max_lines,
    )
    if check is None:
        validator.error(
            "invalid_endpoint", f"Batches for {batch.endpoint} are not supported.", None, "endpoint"
        )
    elif source is None:
        validator.error(
            "file_not_found",
            f"The input file {batch.input_file_id} was deleted.",
            None,
            "input_file_id",
        )
    started = time.perf_counter()
    total = 0
    try:
        with platform.db.session() as tx:
            if not validator.failed:
                copier = RowCopier(tx, batch)
                total = _read(platform, batch, validator, copier)
            errors = validator.finish()
            if validator.failed:
                raise _Invalid(errors)
            if not _start(tx, batch_id, total, validator.model):
                raise _Abandon
    except _Invalid as exc:
        return _fail(platform, batch_id, exc.errors)
    except _Abandon:
        log.info("batch %s left validating while it was read; validation dropped", batch_id)
        return None
    except TRANSIENT:
        raise  # the lease lapses and the sweeper sends the validation again
    except Exception:
        log.exception("validating batch %s failed near line %s", batch_id, validator.line)
        error = LineError(
            "invalid_file",
            "The input file could not be validated at this line (or just before it); "
            "check its text and JSON.",
            validator.line,
        )
        return _fail(platform, batch_id, [error.as_dict()])
    log.info(
        "batch %s: %d lines validated and queued in %.2fs",
        batch_id,
        total,
        time.perf_counter() - started,
    )
    if validator.model:
        dispatch.hint(platform, BATCH, validator.model, platform.settings.batch_queue_depth)
    return "in_progress"


def _fits_model(platform: Platform, check: BodyCheck) -> BodyCheck:
    """The endpoint's body check, then the model's bound on output: a line asking for more
    than the model can ever produce fails here, as the same request sent directly would."""

    def checked(body: dict[str, Any]) -> dict[str, Any]:
        loaded = check(body)
        model = loaded.get("model")
        spec = platform.catalog.get(model) if isinstance(model, str) else None
        if spec is not None:
            check_output_limit(spec, loaded)
        return loaded

    return checked


def _serves(platform: Platform, model: str, endpoint: str) -> bool:
    """Whether ``model`` runs batches; a 400 when it does not do what ``endpoint`` needs."""
    spec = platform.catalog.get(model)
    if spec is None:
        return False
    spec.check_task(embeddings=endpoint == EMBEDDINGS)
    return spec.serves(BATCH)


def _read(platform: Platform, batch: Batch, validator: LineValidator, copier: RowCopier) -> int:
    """Check every line, copying good ones in while no line has failed yet."""
    renew_every = platform.settings.lease_seconds / 3
    renewed = time.monotonic()
    for line_no, raw in enumerate(upload_lines(platform, batch.input_file_id), start=1):
        item = validator.check(line_no, raw)
        if validator.stopped:
            break
        if item is not None and not validator.failed:
            copier.add(line_no, item)
        if time.monotonic() - renewed > renew_every:
            _renew(platform, batch.id)
            renewed = time.monotonic()
    if not validator.failed:
        copier.flush()
    return copier.count


def _renew(platform: Platform, batch_id: str) -> None:
    with platform.db.session() as s:
        if (
            s.execute(_RENEW, {"id": batch_id, "lease": platform.settings.lease_seconds}).first()
            is None
        ):
            raise _Abandon


def _start(tx: Session, batch_id: str, total: int, model: str | None) -> bool:
    return (
        tx.execute(
            update(Batch)
            .where(Batch.id == batch_id, Batch.status == "validating")
            .values(
                status="in_progress",
                in_progress_at=datetime.now(UTC),
                total=total,
                model=model,
                lease_until=None,
            )
            .returning(Batch.id)
        ).first()
        is not None
    )


def _fail(platform: Platform, batch_id: str, errors: list[dict[str, object]]) -> str | None:
    with platform.db.session() as s:
        done = s.execute(
            update(Batch)
            .where(Batch.id == batch_id, Batch.status == "validating")
            .values(
                status="failed",
                failed_at=datetime.now(UTC),
                lease_until=None,
                errors={"object": "list", "data": errors},
                request_counts={"total": 0, "completed": 0, "failed": 0},
                usage=usage_object(),
            )
            .returning(Batch.id, Batch.owner)
        ).first()
        if done:
            webhooks.batch_ended(s, done.owner, batch_id, "failed")
    return "failed" if done else None
