"""``/v1/messages`` (Anthropic's Messages API): create, count tokens, and Message Batches.

Every error on these routes (auth, limits and unknown URLs included) leaves in Anthropic's
envelope, ``{"type": "error", "error": {"type", "message"}}``.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from api import errors
from api.context import owner, platform
from api.sse import reply
from api.validation import body, query
from inference_platform.endpoints.messages import batches, serving
from inference_platform.endpoints.messages.objects import anthropic_error
from inference_platform.endpoints.messages.protocol import (
    MessageBatchCreateRequestSchema,
    MessageBatchListRequestSchema,
    MessageCountTokensRequestSchema,
    MessageCreateRequestSchema,
)

PREFIX = "/v1/messages"
bp = Blueprint("messages", __name__, url_prefix=PREFIX)
_create = MessageCreateRequestSchema()
_count = MessageCountTokensRequestSchema()
_batch = MessageBatchCreateRequestSchema()
_list = MessageBatchListRequestSchema()


@bp.post("")
def create() -> Response:
    """Create a message: realtime by default, flex with `service_tier: "flex"`; streamed or
    whole."""
    return reply(serving.create(platform(), owner(), body(_create)))


@bp.post("/count_tokens")
def count_tokens() -> Response:
    """Count the prompt tokens of a Messages request without running it."""
    return jsonify(serving.count_tokens(platform(), body(_count)))


@bp.post("/batches")
def create_batch() -> Response:
    """Create a Message Batch from inline requests; it runs in the 24 h batch tier."""
    return jsonify(batches.create(platform(), owner(), body(_batch), _results_base()))


@bp.get("/batches")
def list_batches() -> Response:
    """The caller's Message Batches, newest first."""
    args = query(_list)
    return jsonify(batches.list_batches(platform(), owner(), _results_base(), **args))


@bp.get("/batches/<batch_id>")
def retrieve_batch(batch_id: str) -> Response:
    """One Message Batch, with live request counts."""
    return jsonify(batches.retrieve(platform(), owner(), batch_id, _results_base()))


@bp.post("/batches/<batch_id>/cancel")
def cancel_batch(batch_id: str) -> Response:
    """Cancel a Message Batch; requests already finished keep their results."""
    return jsonify(batches.cancel(platform(), owner(), batch_id, _results_base()))


@bp.delete("/batches/<batch_id>")
def delete_batch(batch_id: str) -> Response:
    """Delete an ended Message Batch and its results."""
    return jsonify(batches.delete(platform(), owner(), batch_id))


@bp.get("/batches/<batch_id>/results")
def batch_results(batch_id: str) -> Response:
    """The results of an ended Message Batch as JSONL, one line per request."""
    lines = batches.results(platform(), owner(), batch_id)
    return Response(lines, mimetype="application/binary")


def _results_base() -> str:
    """The absolute URL results are fetched from (the SDK follows ``results_url``)."""
    return request.host_url.rstrip("/") + PREFIX + "/batches"


# Registered with the blueprint: every error under the prefix uses Anthropic's envelope.
bp.record_once(lambda _state: errors.register_envelope(PREFIX, anthropic_error))
