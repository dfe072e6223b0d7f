"""The lines of a batch's output and error files, produced live from its request rows.

Nothing is copied into a file when a line finishes: the output file *is* the batch's
completed rows in ``result_seq`` order, so it can be read (with ``offset``/``limit``) while the
batch still runs. Result sequence numbers of one batch are handed out under a per-batch lock
(see ``batches.rows.lock_batch``) so committed lines always form a prefix: a reader that resumes
at ``offset`` never skips a line that commits later.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import text
from sqlalchemy.engine import Connection

from inference_platform.db import Database

OUTPUT, ERROR = "output", "error"

# One JSONL line. A request that got an HTTP answer carries it in ``response`` (its body is an
# API object or an error envelope); expiry and cancellation carry ``error`` instead.
LINE_SQL = """json_build_object(
    'id', r.id,
    'custom_id', r.custom_id,
    'response', CASE WHEN r.status_code IS NULL THEN NULL ELSE json_build_object(
        'status_code', r.status_code,
        'request_id', 'req_' || substr(r.id, 11),
        'body', r.result) END,
    'error', r.error)::text"""

_WHERE = {
    OUTPUT: "r.batch_id = :batch_id AND r.status = 'completed'",
    ERROR: "r.batch_id = :batch_id AND r.status IN ('failed', 'expired', 'cancelled')",
}


def stats(conn: Connection, batch_id: str, kind: str) -> tuple[int, int]:
    """``(lines, bytes)`` of a result file as it stands."""
    row = conn.execute(
        text(
            f"SELECT count(*), coalesce(sum(octet_length({LINE_SQL}) + 1), 0) "
            f"FROM requests r WHERE {_WHERE[kind]}"
        ),
        {"batch_id": batch_id},
    ).one()
    return int(row[0]), int(row[1])


def count(conn: Connection, batch_id: str, kind: str) -> int:
    return int(
        conn.execute(
            text(f"SELECT count(*) FROM requests r WHERE {_WHERE[kind]}"), {"batch_id": batch_id}
        ).scalar_one()
    )


def lines(db: Database, batch_id: str, kind: str, offset: int, limit: int | None) -> Iterator[str]:
    """Lines ``offset`` .. ``offset + limit`` (each ending in a newline), read in batches
    through a server-side cursor so a 50,000-line file never sits whole in memory."""
    sql = f"SELECT {LINE_SQL} FROM requests r WHERE {_WHERE[kind]} ORDER BY r.result_seq OFFSET :o"
    params: dict[str, object] = {"batch_id": batch_id, "o": offset}
    if limit is not None:
        sql += " LIMIT :l"
        params["l"] = limit
    with db.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=1000).execute(
            text(sql), params
        )
        for (line,) in result:
            yield line + "\n"
