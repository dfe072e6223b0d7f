"""Streaming ``multipart/form-data`` parsing of an upload, on werkzeug's parser.

The one ``file`` part goes straight into the sink the core hands out (nothing is buffered
whole); the other parts are small form fields, returned once the body is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, cast

from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.formparser import MultiPartParser
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import File as FilePart

from inference_platform.errors import invalid
from inference_platform.files.upload import FormParser, SinkFactory, too_large

__all__ = ["FORM_OVERHEAD", "parser", "too_large"]

# Room for the multipart framing and the form fields around the file part (werkzeug also
# applies this limit to its parse buffer, so it must stay well above its 64 KiB reads).
FORM_OVERHEAD = 1024 * 1024
# Form parts an upload may have (`file`, `purpose`, `expires_after[...]`, room to spare).
MAX_FORM_PARTS = 32


class _Parser(MultiPartParser):
    """Routes the one ``file`` part into a sink; other parts are small form fields."""

    def __init__(self, make_sink: SinkFactory) -> None:
        super().__init__(max_form_memory_size=FORM_OVERHEAD, max_form_parts=MAX_FORM_PARTS)
        self.make_sink = make_sink

    def start_file_streaming(self, event: FilePart, total_content_length: int | None) -> IO[bytes]:
        if event.name != "file":
            raise invalid("Send exactly one file, in the `file` form field.", param="file")
        # A write-only file object, which is all the parser uses of what it gets.
        return cast(IO[bytes], self.make_sink(event.filename or "upload"))


def parser(
    stream: IO[bytes], content_type: str | None, content_length: int | None, limit: int
) -> FormParser:
    """What streams this request's body into storage; a 400 now if it is not multipart."""
    mimetype, options = parse_options_header(content_type or "")
    boundary = options.get("boundary", "")
    if mimetype != "multipart/form-data" or not boundary:
        raise invalid(
            "Upload files as `multipart/form-data` with `file` and `purpose` fields.", param="file"
        )

    def parse(make_sink: SinkFactory) -> Mapping[str, str]:
        try:
            form, _ = _Parser(make_sink).parse(stream, boundary.encode("latin-1"), content_length)
        except RequestEntityTooLarge:
            # werkzeug says "too large" for too many parts as well; a body within the size
            # limit can only have hit the part count or a form field's memory limit.
            if content_length is not None and content_length <= limit:
                raise invalid(
                    f"The form has too many fields (at most {MAX_FORM_PARTS}) or a field "
                    "other than `file` that is too large.",
                    param="file",
                ) from None
            raise too_large(limit) from None
        except ClientDisconnected:
            raise invalid("The upload ended before the whole body arrived.", param="file") from None
        except ValueError as exc:
            raise invalid(f"Could not parse the multipart body: {exc}", param="file") from None
        return form.to_dict()

    return parse
