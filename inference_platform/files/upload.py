"""A streamed upload straight into ``file_chunks``, whatever parses the request.

The API's multipart parser hands the file part over in pieces (at most 64 KiB); the sink below
collects about 1 MiB and inserts it as one chunk row, so an upload of any size needs about
1 MiB of memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from inference_platform import ids
from inference_platform.db.models import File, FileChunk
from inference_platform.errors import PlatformError, invalid
from inference_platform.files.stats import LineStats
from inference_platform.platform import Platform

CHUNK_BYTES = 1024 * 1024


def too_large(limit: int) -> PlatformError:
    return PlatformError(
        413,
        f"The file is larger than this server's limit of {limit} bytes.",
        code="file_too_large",
        param="file",
    )


class ChunkSink:
    """A write-only file object that stores what it is given as ~1 MiB chunk rows."""

    def __init__(
        self, session: Session, file_id: str, owner: str, filename: str, limit: int
    ) -> None:
        self.session = session
        self.file_id = file_id
        self.limit = limit
        self.size = 0
        self.newlines = 0
        self.complete = False
        self._last = b""
        self._seq = 0
        self._buf = bytearray()
        # What the file asks of the engine, counted on the way in (admission reads it).
        self.stats = LineStats()
        # The row exists (uncommitted) before its first chunk so the foreign key holds;
        # purpose and size are filled in once the whole body has been read.
        session.execute(
            insert(File).values(
                id=file_id,
                owner=owner,
                filename=filename[:512],
                purpose="batch",
                bytes=0,
                status="uploading",
                kind="upload",
            )
        )

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.limit:
            raise too_large(self.limit)
        if data:
            self.newlines += data.count(b"\n")
            self._last = data[-1:]
            self._buf += data
            self.stats.write(data)
        if len(self._buf) >= CHUNK_BYTES:
            self._flush()
        return len(data)

    def seek(self, *_: Any) -> int:
        # The parser seeks back to 0 when the part is complete: store the tail.
        self._flush()
        self.stats.close()
        self.complete = True
        return 0

    def read(self, *_: Any) -> bytes:
        return b""

    def close(self) -> None:
        return None

    @property
    def line_count(self) -> int:
        trailing = 1 if self.size and self._last != b"\n" else 0
        return self.newlines + trailing

    def _flush(self) -> None:
        if not self._buf:
            return
        self.session.execute(
            insert(FileChunk).values(file_id=self.file_id, seq=self._seq, data=bytes(self._buf))
        )
        self._seq += 1
        self._buf.clear()


# Makes the sink for the one file part, given its filename.
SinkFactory = Callable[[str], ChunkSink]
# Streams a form into the sink it asks for; returns the other (small) form fields.
FormParser = Callable[[SinkFactory], Mapping[str, str]]
# The stored file's ``(purpose, expires_at)`` from those form fields (raises when invalid).
FormCheck = Callable[[Mapping[str, str]], tuple[str, datetime | None]]


def store(platform: Platform, owner: str, parse: FormParser, check: FormCheck) -> File:
    """Store an upload in one transaction: a body that is cut off, too large or otherwise
    refused leaves no trace."""
    limit = platform.settings.max_file_bytes
    file_id = ids.new_id(ids.FILE)
    with platform.db.session() as s:
        sinks: list[ChunkSink] = []

        def make_sink(filename: str) -> ChunkSink:
            if sinks:
                raise invalid("Send exactly one file, in the `file` form field.", param="file")
            sinks.append(ChunkSink(s, file_id, owner, filename, limit))
            return sinks[0]

        form = parse(make_sink)
        if not sinks or not sinks[0].complete:
            raise invalid("The request has no complete `file` part.", param="file")
        purpose, expires_at = check(form)
        return s.scalars(
            update(File)
            .where(File.id == file_id)
            .values(
                purpose=purpose,
                bytes=sinks[0].size,
                line_count=sinks[0].line_count,
                stats=sinks[0].stats.as_dict() if purpose == "batch" else None,
                status="processed",
                expires_at=expires_at,
            )
            .returning(File)
        ).one()


def store_lines(
    session: Session,
    owner: str,
    filename: str,
    lines: Iterable[bytes],
    expires_at: datetime | None,
    limit: int,
) -> File:
    """A batch input file made on the server (a retry's lines), in the caller's transaction."""
    sink = ChunkSink(session, ids.new_id(ids.FILE), owner, filename, limit)
    for line in lines:
        sink.write(line.rstrip(b"\n") + b"\n")
    sink.seek(0)
    return session.scalars(
        update(File)
        .where(File.id == sink.file_id)
        .values(
            bytes=sink.size,
            line_count=sink.line_count,
            stats=sink.stats.as_dict(),
            status="processed",
            expires_at=expires_at,
        )
        .returning(File)
    ).one()
