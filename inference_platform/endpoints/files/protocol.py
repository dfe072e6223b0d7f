"""``/v1/files``: the request schemas and the ``file`` object.

The upload is a streamed multipart body: its file part goes straight to storage, and the
small form fields around it are loaded by FileCreateRequestSchema once the body is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, TypedDict

from marshmallow import EXCLUDE, Schema, fields, pre_load, validate

from inference_platform.db.models import File
from inference_platform.endpoints.protocol import described
from inference_platform.files.store import LIST_PURPOSES, PURPOSES

# Purposes OpenAI validates a file for that this server has no use for: refused at upload,
# as OpenAI refuses a file its purpose cannot use, never kept and left unused.
NOT_SERVED = ("fine-tune",)


class ExpiresAfterSchema(Schema):
    anchor = fields.String(
        load_default="created_at",
        validate=validate.Equal("created_at", error="must be `created_at`."),
        metadata=described("Only `created_at`."),
    )
    seconds = fields.Integer(
        required=True,
        validate=validate.Range(min=3600, max=2592000),
        metadata=described("Lifetime of the file, 1 hour to 30 days."),
    )


class FileCreateRequestSchema(Schema):
    """The form fields of ``POST /v1/files`` (the SDK flattens ``expires_after[...]``)."""

    class Meta:
        unknown = EXCLUDE

    purpose = fields.String(
        required=True,
        validate=[
            validate.OneOf(PURPOSES, error="expected one of {choices}; got {input!r}."),
            validate.NoneOf(
                NOT_SERVED,
                error="this server does not fine-tune models, so it takes no `fine-tune` "
                "files; batch input files use `batch`.",
            ),
        ],
        metadata=described("What the file is for; batch input files use `batch`."),
    )
    expires_after = fields.Nested(
        ExpiresAfterSchema,
        metadata=described("When the file expires (default: batch files after 30 days)."),
    )

    @pre_load
    def _nest(self, form: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        out = {k: v for k, v in form.items() if not k.startswith("expires_after[")}
        nested = {k[14:-1]: v for k, v in form.items() if k.startswith("expires_after[")}
        if "seconds" in nested:
            out["expires_after"] = nested
        return out


class FileListRequestSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    after = fields.String(
        load_default=None, metadata=described("List the files after this file id.")
    )
    limit = fields.Integer(
        load_default=10000,
        validate=validate.Range(min=1, max=10000),
        metadata=described("Page size, 1 to 10000."),
    )
    order = fields.String(
        load_default="desc",
        validate=validate.OneOf(("asc", "desc")),
        metadata=described("`desc` lists the newest first."),
    )
    purpose = fields.String(
        load_default=None,
        validate=validate.OneOf(LIST_PURPOSES),
        metadata=described("Only files with this purpose."),
    )


class FileContentRequestSchema(Schema):
    """``offset``/``limit`` in lines: the partial-results extension for batch output files."""

    class Meta:
        unknown = EXCLUDE

    offset = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0),
        metadata=described("Extension: skip this many lines."),
    )
    limit = fields.Integer(
        load_default=None,
        validate=validate.Range(min=1),
        metadata=described("Extension: at most this many lines."),
    )


# -- objects -------------------------------------------------------------------------------


class FileObject(TypedDict):
    id: str
    object: Literal["file"]
    bytes: int
    created_at: int | None
    filename: str
    purpose: str
    status: Literal["processed"]
    expires_at: int | None
    status_details: None


class FileDeleted(TypedDict):
    id: str
    object: Literal["file"]
    deleted: bool


def _ts(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def file_object(f: File, size: int | None = None) -> FileObject:
    return {
        "id": f.id,
        "object": "file",
        "bytes": f.bytes if size is None else size,
        "created_at": _ts(f.created_at),
        "filename": f.filename,
        "purpose": f.purpose,
        "status": "processed",
        "expires_at": _ts(f.expires_at),
        "status_details": None,
    }


def file_deleted(file_id: str) -> FileDeleted:
    return {"id": file_id, "object": "file", "deleted": True}
