"""Stored files: look-up, listing, deletion and content, always filtered by owner.

Another tenant's file is indistinguishable from a missing one (404). Output and error files
of a batch are ``files`` rows too (purpose ``batch_output``, the batch's owner); their content
comes from ``files.results``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, or_, select, text, tuple_, update
from sqlalchemy.orm import Session

from inference_platform.db.models import Batch, File, FileChunk
from inference_platform.endpoints.batches.protocol import BATCH_FINAL_STATUSES
from inference_platform.errors import not_found
from inference_platform.files import results
from inference_platform.platform import Platform

BATCH_OUTPUT = "batch_output"
PURPOSES = ("batch", "user_data", "assistants", "vision", "fine-tune", "evals")
LIST_PURPOSES = (*PURPOSES, BATCH_OUTPUT)


def _visible() -> Any:
    return [
        File.deleted_at.is_(None),
        File.status == "processed",
        or_(File.expires_at.is_(None), File.expires_at > func.now()),
    ]


def get_file(session: Session, owner: str, file_id: str) -> File:
    """The caller's file or 404 (also for another tenant's file)."""
    row = session.scalars(
        select(File).where(File.id == file_id, File.owner == owner, *_visible())
    ).first()
    if row is None:
        raise not_found(f"No such File object: {file_id}", param="file_id")
    return row


def size(session: Session, f: File) -> int:
    """A live result file's size is what its lines add up to right now."""
    if f.kind == "upload" or f.line_count is not None or f.batch_id is None:
        return f.bytes
    return results.stats(session.connection(), f.batch_id, f.kind)[1]


def find(platform: Platform, owner: str, file_id: str) -> tuple[File, int]:
    """The caller's file and its current size, or 404."""
    with platform.db.session() as s:
        f = get_file(s, owner, file_id)
        return f, size(s, f)


def page(
    platform: Platform,
    owner: str,
    *,
    after: str | None,
    limit: int,
    order: str,
    purpose: str | None,
) -> tuple[list[tuple[File, int]], bool]:
    """Up to ``limit`` files with their sizes, and whether more follow; ``after`` is the last
    id of the previous page."""
    with platform.db.session() as s:
        query = select(File).where(File.owner == owner, *_visible())
        if purpose:
            query = query.where(File.purpose == purpose)
        if after:
            cursor = s.scalars(select(File).where(File.id == after, File.owner == owner)).first()
            if cursor is None:
                return [], False
            row, key = tuple_(File.created_at, File.id), tuple_(cursor.created_at, cursor.id)
            query = query.where(row < key if order == "desc" else row > key)
        columns = (File.created_at, File.id)
        query = query.order_by(*(c.desc() if order == "desc" else c.asc() for c in columns))
        rows = list(s.scalars(query.limit(limit + 1)))
        return [(f, size(s, f)) for f in rows[:limit]], len(rows) > limit


def delete(platform: Platform, owner: str, file_id: str) -> None:
    """Delete a file. Upload bytes go at once; a result file stops being readable (its lines
    live on in the batch's request rows)."""
    with platform.db.session() as s:
        f = get_file(s, owner, file_id)
        s.execute(update(File).where(File.id == f.id).values(deleted_at=func.now()))
        s.execute(sql_delete(FileChunk).where(FileChunk.file_id == f.id))


@dataclass
class Content:
    body: Iterator[bytes] | Iterator[str]
    mimetype: str
    headers: dict[str, str] = field(default_factory=dict)


def content(
    platform: Platform, owner: str, file_id: str, *, offset: int = 0, limit: int | None = None
) -> Content:
    """A file's bytes, streamed. ``offset``/``limit`` count lines; result files also report
    ``X-Incomplete`` (more lines may come) and ``X-Last-Line`` (the offset to resume at)."""
    with platform.db.session() as s:
        f = get_file(s, owner, file_id)
        if f.kind == "upload":
            return _upload_content(platform, f.id, offset, limit)
        assert f.batch_id is not None
        status = s.scalar(select(Batch.status).where(Batch.id == f.batch_id))
        running = status not in BATCH_FINAL_STATUSES
        if limit is not None:
            page = list(results.lines(platform.db, f.batch_id, f.kind, offset, limit + 1))
            more = len(page) > limit or running
            page = page[:limit]
            body: Iterator[str] = iter(page)
            returned = len(page)
        else:
            # Count first and stream exactly that many, so X-Last-Line is right even when
            # more lines commit while the body is being sent.
            total = results.count(s.connection(), f.batch_id, f.kind)
            returned = max(0, total - offset)
            body = results.lines(platform.db, f.batch_id, f.kind, offset, returned)
            more = running
    headers = {"X-Incomplete": "true" if more else "false", "X-Last-Line": str(offset + returned)}
    return Content(body, "application/x-ndjson", headers)


def _upload_content(platform: Platform, file_id: str, offset: int, limit: int | None) -> Content:
    if offset == 0 and limit is None:
        return Content(_chunks(platform, file_id), "application/octet-stream")
    if limit is None:
        return Content(_upload_lines(platform, file_id, offset, None), "application/octet-stream")
    page = list(_upload_lines(platform, file_id, offset, limit))
    return Content(
        iter(page),
        "application/octet-stream",
        {"X-Incomplete": "false", "X-Last-Line": str(offset + len(page))},
    )


def _chunks(platform: Platform, file_id: str) -> Iterator[bytes]:
    with platform.db.engine.connect() as conn:
        rows = conn.execution_options(stream_results=True, yield_per=1).execute(
            text("SELECT data FROM file_chunks WHERE file_id = :f ORDER BY seq"), {"f": file_id}
        )
        for (data,) in rows:
            yield bytes(data)


def upload_lines(platform: Platform, file_id: str) -> Iterator[bytes]:
    """Every line of an uploaded file (without its newline), chunk by chunk."""
    rest = b""
    for chunk in _chunks(platform, file_id):
        data = rest + chunk
        parts = data.split(b"\n")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest


def _upload_lines(
    platform: Platform, file_id: str, offset: int, limit: int | None
) -> Iterator[bytes]:
    for index, line in enumerate(upload_lines(platform, file_id)):
        if index < offset:
            continue
        if limit is not None and index >= offset + limit:
            return
        yield line + b"\n"
