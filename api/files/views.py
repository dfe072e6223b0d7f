"""``/v1/files``: upload, list, retrieve, delete and content."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from api.context import owner, platform
from api.files import multipart
from api.validation import query
from inference_platform.endpoints.files import serving
from inference_platform.endpoints.files.estimate import (
    FileCostEstimateRequestSchema,
    cost_estimate,
)
from inference_platform.endpoints.files.protocol import (
    FileContentRequestSchema,
    FileListRequestSchema,
)

bp = Blueprint("files", __name__, url_prefix="/v1")
_list = FileListRequestSchema()
_content = FileContentRequestSchema()
_estimate = FileCostEstimateRequestSchema()


@bp.post("/files")
def upload() -> Response:
    """Stream a multipart upload into storage; never buffered whole."""
    limit = platform().settings.max_file_bytes
    # This route alone accepts bodies up to the file limit (JSON routes keep the small one).
    request.max_content_length = limit + multipart.FORM_OVERHEAD
    try:
        stream = request.stream
    except RequestEntityTooLarge:
        raise multipart.too_large(limit) from None
    parse = multipart.parser(stream, request.content_type, request.content_length, limit)
    return jsonify(serving.create(platform(), owner(), parse))


@bp.get("/files")
def list_files() -> Response:
    """The caller's files, newest first by default."""
    return jsonify(serving.list_files(platform(), owner(), **query(_list)))


@bp.get("/files/<file_id>")
def retrieve(file_id: str) -> Response:
    """One file object."""
    return jsonify(serving.retrieve(platform(), owner(), file_id))


@bp.delete("/files/<file_id>")
def delete(file_id: str) -> Response:
    """Delete a file."""
    return jsonify(serving.delete(platform(), owner(), file_id))


@bp.get("/files/<file_id>/content")
def content(file_id: str) -> Response:
    """The file's bytes, streamed; ``offset``/``limit`` select lines."""
    found = serving.content(platform(), owner(), file_id, **query(_content))
    return Response(found.body, mimetype=found.mimetype, headers=found.headers)


@bp.get("/files/<file_id>/cost_estimate")
def estimate(file_id: str) -> Response:
    """Extension: what a batch of this file would cost, priced before anything runs."""
    return jsonify(cost_estimate(platform(), owner(), file_id, **query(_estimate)))
