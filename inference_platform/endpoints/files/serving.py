"""Serving ``/v1/files``: upload, list, retrieve, delete and content, filtered by owner."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from inference_platform.endpoints.files.protocol import (
    FileCreateRequestSchema,
    FileDeleted,
    FileObject,
    file_deleted,
    file_object,
)
from inference_platform.endpoints.protocol import Page, load, page
from inference_platform.files import store, upload
from inference_platform.platform import Platform

__all__ = ["content", "create", "delete", "list_files", "retrieve"]
content = store.content


def create(platform: Platform, owner: str, parse: upload.FormParser) -> FileObject:
    """Store the upload that ``parse`` streams; its form fields are checked once it is read."""
    default_seconds = platform.settings.file_expiry_seconds
    schema = FileCreateRequestSchema()

    def check(form: Mapping[str, str]) -> tuple[str, datetime | None]:
        fields = load(schema, dict(form))
        seconds = (fields.get("expires_after") or {}).get("seconds")
        if seconds is None and fields["purpose"] == "batch":
            seconds = default_seconds
        expires = None if seconds is None else datetime.now(UTC) + timedelta(seconds=seconds)
        return fields["purpose"], expires

    return file_object(upload.store(platform, owner, parse, check))


def retrieve(platform: Platform, owner: str, file_id: str) -> FileObject:
    return file_object(*store.find(platform, owner, file_id))


def list_files(
    platform: Platform,
    owner: str,
    *,
    after: str | None,
    limit: int,
    order: str,
    purpose: str | None,
) -> Page:
    """A page, newest first by default."""
    found, has_more = store.page(
        platform, owner, after=after, limit=limit, order=order, purpose=purpose
    )
    return page([file_object(f, size) for f, size in found], has_more)


def delete(platform: Platform, owner: str, file_id: str) -> FileDeleted:
    store.delete(platform, owner, file_id)
    return file_deleted(file_id)
