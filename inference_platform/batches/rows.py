"""Bulk operations on a batch's request rows, shared by validation, workers and the control role.

Result sequence numbers order the lines of the output and error files. Every transaction that
hands them out for a batch first takes that batch's advisory lock, so sequence order equals
commit order and a partial-results reader that resumes at an offset never misses a line.
Lock order is always: advisory lock(s) by batch id, then the batch row.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.orm import Session

from inference_platform import ids
from inference_platform.batches.lines import GoodLine
from inference_platform.db.models import Batch, File
from inference_platform.files.results import ERROR, OUTPUT
from inference_platform.files.store import BATCH_OUTPUT

QUEUED, IN_PROGRESS = "queued", "in_progress"
COMPLETED, FAILED, EXPIRED, CANCELLED = "completed", "failed", "expired", "cancelled"
UNFINISHED = (QUEUED, IN_PROGRESS)

# Lines COPY sends to Postgres per round trip while validating.
COPY_ROWS = 2000
_COPY_COLUMNS = (
    "id",
    "owner",
    "tier",
    "endpoint",
    "model",
    "status",
    "body",
    "priority",
    "deadline",
    "attempt",
    "background",
    "stream",
    "store",
    "batch_id",
    "custom_id",
    "line_no",
    "output_limit",
    "api_key_id",
    "prefix_hash",
)


def rowcount(result: Any) -> int:
    """Rows an UPDATE touched (``Session.execute`` is typed as returning a plain Result)."""
    return int(getattr(result, "rowcount", 0) or 0)


def lock_batches(session: Session, batch_ids: Iterable[str]) -> None:
    """Serialise result writers of these batches until the transaction ends."""
    for batch_id in sorted(set(batch_ids)):
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:b, 0))"), {"b": batch_id}
        )


def ensure_result_files(session: Session, batch_id: str, *, output: bool, error: bool) -> None:
    """Create the batch's output / error file the moment its first such line is written."""
    row = session.execute(
        select(
            Batch.owner, Batch.output_file_id, Batch.error_file_id, Batch.output_expires_seconds
        ).where(Batch.id == batch_id)
    ).one_or_none()
    if row is None:
        return
    wanted = (
        (OUTPUT, output, row.output_file_id, Batch.output_file_id),
        (ERROR, error, row.error_file_id, Batch.error_file_id),
    )
    for kind, want, current, column in wanted:
        if not want or current is not None:
            continue
        file_id = ids.new_id(ids.FILE)
        claimed = session.execute(
            update(Batch)
            .where(Batch.id == batch_id, column.is_(None))
            .values({column.key: file_id})
            .returning(Batch.id)
        ).first()
        if claimed is None:
            continue
        expires = row.output_expires_seconds
        session.execute(
            insert(File).values(
                id=file_id,
                owner=row.owner,
                filename=f"{batch_id}_{kind}.jsonl",
                purpose=BATCH_OUTPUT,
                bytes=0,
                status="processed",
                kind=kind,
                batch_id=batch_id,
                expires_at=None if expires is None else func.now() + timedelta(seconds=expires),
            )
        )


def close_unfinished(
    session: Session, batch_id: str, status: str, code: str, message: str
) -> tuple[int, list[str]]:
    """End every queued or running line with a top-level ``error`` (expiry, cancellation).

    Returns how many lines were closed and the ids that were running, so their generations
    can be aborted. Caller holds the batch's advisory lock.
    """
    running = list(
        session.scalars(
            text("SELECT id FROM requests WHERE batch_id = :b AND status = 'in_progress'"),
            {"b": batch_id},
        )
    )
    closed = rowcount(
        session.execute(
            text(
                "UPDATE requests SET status = :s, error = CAST(:e AS jsonb), result = NULL, "
                "status_code = NULL, result_seq = nextval('request_result_seq'), "
                "finished_at = now(), lease_until = NULL "
                "WHERE batch_id = :b AND status IN ('queued', 'in_progress')"
            ),
            {"s": status, "e": json.dumps({"code": code, "message": message}), "b": batch_id},
        )
    )
    if closed:
        ensure_result_files(session, batch_id, output=False, error=True)
    return closed, running


def has_unfinished(session: Session, batch_id: str) -> bool:
    return bool(
        session.scalar(
            text(
                "SELECT EXISTS (SELECT 1 FROM requests WHERE batch_id = :b "
                "AND status IN ('queued', 'in_progress'))"
            ),
            {"b": batch_id},
        )
    )


def _copy_text(value: str) -> str:
    """Escape a value for COPY's text format."""
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def _copy_int(value: int | None) -> str:
    return "\\N" if value is None else str(int(value))


class RowCopier:
    """Inserts a batch's request rows with COPY, a few thousand per round trip."""

    def __init__(self, session: Session, batch: Batch) -> None:
        self.session = session
        self.count = 0
        self._buf = io.StringIO()
        self._pending = 0
        deadline = batch.expires_at.isoformat() if batch.expires_at else "\\N"
        # Columns that are the same on every line of the batch, around id/model/body.
        self._owner = f"{_copy_text(batch.owner)}\tbatch\t{batch.endpoint}"
        self._middle = f"2\t{deadline}\t0\tf\tf\tt\t{batch.id}"
        # Lines bill to the key that created their batch.
        self._key = _copy_text(batch.api_key_id) if batch.api_key_id else "\\N"

    def add(self, line_no: int, line: GoodLine) -> None:
        self._buf.write(
            f"{ids.new_id(ids.BATCH_REQUEST)}\t{self._owner}\t{_copy_text(line.model)}\t"
            f"{QUEUED}\t{_copy_text(line.body)}\t{self._middle}\t{_copy_text(line.custom_id)}"
            f"\t{line_no}\t{_copy_int(line.output_limit)}\t{self._key}"
            f"\t{_copy_int(line.prefix_hash)}\n"
        )
        self.count += 1
        self._pending += 1
        if self._pending >= COPY_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        self._buf.seek(0)
        cursor = self.session.connection().connection.cursor()
        try:
            cursor.copy_expert(f"COPY requests ({', '.join(_COPY_COLUMNS)}) FROM STDIN", self._buf)
        finally:
            cursor.close()
        self._buf = io.StringIO()
        self._pending = 0
