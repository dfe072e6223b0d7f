"""``/v1/files``: upload, list, retrieve, delete and content."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from api.context import owner, platform
from api.files.schemas import ContentQuery, ListFilesQuery
from api.validation import load
from inference_platform import files
from inference_platform.files.upload import FORM_OVERHEAD, too_large

bp = Blueprint("files", __name__, url_prefix="/v1")
_list = ListFilesQuery()
_content = ContentQuery()


@bp.post("/files")
def upload() -> Response:
    """Stream a multipart upload into storage; never buffered whole."""
    limit = platform().settings.max_file_bytes
    # This route alone accepts bodies up to the file limit (JSON routes keep the small one).
    request.max_content_length = limit + FORM_OVERHEAD
    try:
        stream = request.stream
    except RequestEntityTooLarge:
        raise too_large(limit) from None
    return jsonify(
        files.receive(platform(), owner(), stream, request.content_type, request.content_length)
    )


@bp.get("/files")
def list_files() -> Response:
    query = load(_list, request.args.to_dict())
    return jsonify(files.list_files(platform(), owner(), **query))


@bp.get("/files/<file_id>")
def retrieve(file_id: str) -> Response:
    return jsonify(files.retrieve(platform(), owner(), file_id))


@bp.delete("/files/<file_id>")
def delete(file_id: str) -> Response:
    return jsonify(files.delete(platform(), owner(), file_id))


@bp.get("/files/<file_id>/content")
def content(file_id: str) -> Response:
    query = load(_content, request.args.to_dict())
    found = files.content(platform(), owner(), file_id, **query)
    return Response(found.body, mimetype=found.mimetype, headers=found.headers)
