"""Streamed multipart upload straight into ``file_chunks``.

werkzeug's multipart parser hands the file part over in pieces of at most 64 KiB; the sink
below collects about 1 MiB and inserts it as one chunk row, so an upload of any size needs about
1 MiB of memory. The whole upload is one transaction: a body that is cut off, too large or
otherwise refused leaves no trace.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import IO, Any

from sqlalchemy import insert, update
from sqlalchemy.orm import Session
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.formparser import MultiPartParser
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import File as FilePart

from inference_platform import ids
from inference_platform.db.models import File, FileChunk
from inference_platform.errors import PlatformError, invalid
from inference_platform.files.store import PURPOSES, file_object
from inference_platform.platform import Platform

CHUNK_BYTES = 1024 * 1024
# Room for the multipart framing and the form fields around the file part (werkzeug also
# applies this limit to its parse buffer, so it must stay well above its 64 KiB reads).
FORM_OVERHEAD = 1024 * 1024
MIN_EXPIRY, MAX_EXPIRY = 3600, 2592000


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
        if len(self._buf) >= CHUNK_BYTES:
            self._flush()
        return len(data)

    def seek(self, *_: Any) -> int:
        # The parser seeks back to 0 when the part is complete: store the tail.
        self._flush()
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


class _Parser(MultiPartParser):
    """Routes the one ``file`` part into a ChunkSink; other parts are small form fields."""

    def __init__(self, make_sink: Any) -> None:
        super().__init__(max_form_memory_size=FORM_OVERHEAD, max_form_parts=32)
        self.make_sink = make_sink
        self.sink: ChunkSink | None = None

    def start_file_streaming(self, event: FilePart, total_content_length: int | None) -> IO[bytes]:
        if event.name != "file" or self.sink is not None:
            raise invalid("Send exactly one file, in the `file` form field.", param="file")
        self.sink = self.make_sink(event.filename or "upload")
        return self.sink  # type: ignore[return-value]


def receive(
    platform: Platform,
    owner: str,
    stream: IO[bytes],
    content_type: str | None,
    content_length: int | None,
) -> dict[str, Any]:
    """Store a ``multipart/form-data`` upload (``file`` + ``purpose``); the FileObject."""
    mimetype, options = parse_options_header(content_type or "")
    boundary = options.get("boundary", "")
    if mimetype != "multipart/form-data" or not boundary:
        raise invalid(
            "Upload files as `multipart/form-data` with `file` and `purpose` fields.", param="file"
        )
    limit = platform.settings.max_file_bytes
    file_id = ids.new_id(ids.FILE)
    with platform.db.session() as s:
        parser = _Parser(lambda name: ChunkSink(s, file_id, owner, name, limit))
        try:
            form, _ = parser.parse(stream, boundary.encode("latin-1"), content_length)
        except RequestEntityTooLarge:
            raise too_large(limit) from None
        except ClientDisconnected:
            raise invalid("The upload ended before the whole body arrived.", param="file") from None
        except ValueError as exc:
            raise invalid(f"Could not parse the multipart body: {exc}", param="file") from None
        sink = parser.sink
        if sink is None or not sink.complete:
            raise invalid("The request has no complete `file` part.", param="file")
        purpose = form.get("purpose")
        if purpose not in PURPOSES:
            raise invalid(
                f"Invalid value for 'purpose': expected one of {', '.join(PURPOSES)}; "
                f"got {purpose!r}.",
                param="purpose",
            )
        expires_at = _expires_at(form, purpose, platform.settings.file_expiry_seconds)
        row = s.scalars(
            update(File)
            .where(File.id == file_id)
            .values(
                purpose=purpose,
                bytes=sink.size,
                line_count=sink.line_count,
                status="processed",
                expires_at=expires_at,
            )
            .returning(File)
        ).one()
        return file_object(row)


def _expires_at(form: Any, purpose: str, default_seconds: int) -> datetime | None:
    anchor = form.get("expires_after[anchor]")
    raw = form.get("expires_after[seconds]")
    if raw is None:
        if purpose != "batch":
            return None
        return datetime.now(UTC) + timedelta(seconds=default_seconds)
    if anchor not in (None, "created_at"):
        raise invalid("`expires_after.anchor` must be `created_at`.", param="expires_after.anchor")
    try:
        seconds = int(raw)
    except ValueError:
        seconds = -1
    if not MIN_EXPIRY <= seconds <= MAX_EXPIRY:
        raise invalid(
            f"`expires_after.seconds` must be an integer from {MIN_EXPIRY} to {MAX_EXPIRY}.",
            param="expires_after.seconds",
        )
    return datetime.now(UTC) + timedelta(seconds=seconds)
