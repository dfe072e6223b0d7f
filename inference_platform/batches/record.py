"""Writing finished batch lines: once each, with their usage, in small groups.

A group is one transaction: the batch's advisory lock (so result order is commit order), a
conditional update of the lines (only rows still ``in_progress`` at the claimed attempt take the
result), usage rows for exactly the lines that were written, and the output / error file rows
when these are the batch's first such lines.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

from psycopg2.extras import execute_values
from sqlalchemy import text
from sqlalchemy.orm import Session

from inference_platform import usage
from inference_platform.batches import rows
from inference_platform.batches.lifecycle import request_finalize
from inference_platform.platform import Platform
from inference_platform.tiers import BATCH

# Write when this many lines are waiting or this long after the last write.
FLUSH_LINES = 256
FLUSH_SECONDS = 0.5

_WRITE = """
    UPDATE requests AS r
    SET status = v.status, status_code = v.code, result = v.result, error = NULL,
        result_seq = nextval('request_result_seq'), finished_at = now(), lease_until = NULL
    FROM (VALUES %s) AS v(id, attempt, status, code, result)
    WHERE r.id = v.id AND r.status = 'in_progress' AND r.attempt = v.attempt
    RETURNING r.id
"""
_REQUEUE = text(
    "UPDATE requests SET status = 'queued', lease_until = NULL "
    "WHERE id = :id AND status = 'in_progress' AND attempt = :attempt AND attempt < :cap"
)


@dataclass
class Outcome:
    id: str
    batch_id: str
    attempt: int
    status: str  # completed | failed | queued (hand back without a result)
    status_code: int | None = None
    result: str | None = None  # JSON text of the response body
    usage: tuple[int, int] | None = None
    owner: str = ""
    model: str = ""
    endpoint: str = ""

    @classmethod
    def requeue(cls, line_id: str, batch_id: str, attempt: int) -> Outcome:
        return cls(line_id, batch_id, attempt, rows.QUEUED)


def write(session: Session, outcomes: list[Outcome], attempt_cap: int) -> set[str]:
    """Record outcomes; returns the ids whose results were written."""
    final = [o for o in outcomes if o.status != rows.QUEUED]
    written: set[str] = set()
    if final:
        rows.lock_batches(session, {o.batch_id for o in final})
        cursor = session.connection().connection.cursor()
        try:
            returned = execute_values(
                cursor,
                _WRITE,
                [(o.id, o.attempt, o.status, o.status_code, o.result) for o in final],
                template="(%s, %s::int, %s, %s::int, %s::jsonb)",
                fetch=True,
            )
        finally:
            cursor.close()
        written = {r[0] for r in returned}
        usage.record(
            session,
            [
                usage.usage_row(
                    request_id=o.id,
                    owner=o.owner,
                    model=o.model,
                    tier=BATCH,
                    endpoint=o.endpoint,
                    input_tokens=o.usage[0],
                    output_tokens=o.usage[1],
                    batch_id=o.batch_id,
                )
                for o in final
                if o.id in written and o.usage is not None
            ],
        )
        kinds: dict[str, set[str]] = defaultdict(set)
        for o in final:
            if o.id in written:
                kinds[o.batch_id].add(o.status)
        for batch_id, statuses in kinds.items():
            rows.ensure_result_files(
                session, batch_id, output=rows.COMPLETED in statuses, error=rows.FAILED in statuses
            )
    for o in outcomes:
        if o.status == rows.QUEUED:
            session.execute(_REQUEUE, {"id": o.id, "attempt": o.attempt, "cap": attempt_cap})
    return written


class Recorder:
    """Buffers a chunk's outcomes and writes them in groups; ``finish`` asks for
    finalisation of batches that have nothing left to run."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._pending: list[Outcome] = []
        self._last = time.monotonic()
        self._batches: set[str] = set()

    def add(self, outcome: Outcome) -> None:
        self._pending.append(outcome)
        if len(self._pending) >= FLUSH_LINES or time.monotonic() - self._last >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        self._last = time.monotonic()
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        with self.platform.db.session() as s:
            write(s, pending, self.platform.settings.attempt_cap)
        self._batches.update(o.batch_id for o in pending)

    def finish(self) -> None:
        self.flush()
        for batch_id in self._batches:
            with self.platform.db.session() as s:
                done = not rows.has_unfinished(s, batch_id)
            if done:
                request_finalize(self.platform, batch_id)
