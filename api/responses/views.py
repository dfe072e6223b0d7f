"""``/v1/responses``: create, retrieve (or resume its stream), cancel, delete, input items."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api.context import owner, platform
from api.sse import reply
from api.validation import body, query
from inference_platform.endpoints.responses import serving
from inference_platform.endpoints.responses.protocol import (
    InputItemListRequestSchema,
    ResponseCreateRequestSchema,
    ResponseRetrieveRequestSchema,
)

bp = Blueprint("responses", __name__, url_prefix="/v1")
_create = ResponseCreateRequestSchema()
_retrieve = ResponseRetrieveRequestSchema()
_items = InputItemListRequestSchema()


@bp.post("/responses")
def create() -> Response:
    """Create a response in any tier: streamed, blocking, or in the background."""
    return reply(serving.create(platform(), owner(), body(_create)))


@bp.get("/responses/<response_id>")
def retrieve(response_id: str) -> Response:
    """The response; with ``stream=true`` its events after ``starting_after``."""
    args = query(_retrieve)
    return reply(
        serving.retrieve(
            platform(),
            owner(),
            response_id,
            stream=args["stream"],
            starting_after=args.get("starting_after"),
        )
    )


@bp.post("/responses/<response_id>/cancel")
def cancel(response_id: str) -> Response:
    """Cancel a background response, keeping what it produced."""
    return jsonify(serving.cancel(platform(), owner(), response_id))


@bp.delete("/responses/<response_id>")
def delete(response_id: str) -> Response:
    """Delete a stored response."""
    return jsonify(serving.delete(platform(), owner(), response_id))


@bp.get("/responses/<response_id>/input_items")
def input_items(response_id: str) -> Response:
    """A page of the input items the response was created with."""
    args = query(_items)
    return jsonify(
        serving.input_items(
            platform(),
            owner(),
            response_id,
            after=args.get("after"),
            limit=args["limit"],
            order=args["order"],
        )
    )
