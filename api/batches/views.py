"""``/v1/batches``: create, retrieve, list and cancel."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api.context import owner, platform
from api.validation import body, optional_body, query
from inference_platform.endpoints.batches import serving
from inference_platform.endpoints.batches.protocol import (
    BatchCreateRequestSchema,
    BatchListRequestSchema,
    BatchRetryRequestSchema,
)

bp = Blueprint("batches", __name__, url_prefix="/v1")
_list = BatchListRequestSchema()


@bp.post("/batches")
def create() -> Response:
    """Create a batch from an uploaded JSONL file; it starts in ``validating``."""
    # The completion windows are this deployment's, so the schema is built per request.
    schema = BatchCreateRequestSchema(platform().settings.window_seconds())
    return jsonify(serving.create(platform(), owner(), body(schema)))


@bp.get("/batches/<batch_id>")
def retrieve(batch_id: str) -> Response:
    """One batch, with live counts while it runs."""
    return jsonify(serving.retrieve(platform(), owner(), batch_id))


@bp.get("/batches")
def list_batches() -> Response:
    """The caller's batches, newest first."""
    return jsonify(serving.list_batches(platform(), owner(), **query(_list)))


@bp.post("/batches/<batch_id>/cancel")
def cancel(batch_id: str) -> Response:
    """Cancel a batch; the lines already done stay in its output file."""
    return jsonify(serving.cancel(platform(), owner(), batch_id))


@bp.post("/batches/<batch_id>/retry")
def retry(batch_id: str) -> Response:
    """Run a finished batch's failed, expired and cancelled lines again, as a new batch."""
    schema = BatchRetryRequestSchema(platform().settings.window_seconds())
    fields = optional_body(schema)
    return jsonify(serving.retry(platform(), owner(), batch_id, fields["completion_window"]))
