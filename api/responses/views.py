"""``/v1/responses``: create, retrieve (or resume its stream), cancel, delete, input items."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, jsonify, request

from api import sse
from api.context import owner, platform
from api.responses.schemas import InputItemsArgs, ResponseCreateSchema, RetrieveArgs
from api.validation import json_body, load
from inference_platform.errors import invalid
from inference_platform.responses import service, store
from inference_platform.responses.stream import KEEPALIVE, Event

bp = Blueprint("responses", __name__, url_prefix="/v1")
_create = ResponseCreateSchema()
_retrieve = RetrieveArgs()
_items = InputItemsArgs()


def _query(schema: Any) -> dict[str, Any]:
    """Query parameters; ``include`` may come as ``include[]=a`` or ``include=a``."""
    args: dict[str, Any] = {
        k: v for k, v in request.args.items() if k not in ("include", "include[]")
    }
    include = request.args.getlist("include[]") + request.args.getlist("include")
    if include:
        args["include[]"] = include
    parsed = load(schema, args)
    if parsed.get("include"):
        raise invalid("`include` is not supported by this server.", param="include")
    return parsed


def _sse(streamed: service.Streamed) -> Response:
    def encode(events: Iterator[Event]) -> Iterator[str]:
        for kind, payload in events:
            yield ": keep-alive\n\n" if kind == KEEPALIVE else sse.named(kind, payload)

    return sse.stream(encode(streamed.events), on_close=streamed.on_close)


def _reply(result: dict[str, Any] | service.Streamed) -> Response:
    if isinstance(result, service.Streamed):
        return _sse(result)
    return jsonify(result)


@bp.post("/responses")
def create() -> Response:
    """Create a response in any tier: streamed, blocking, or in the background."""
    body = load(_create, json_body())
    return _reply(service.create(platform(), owner(), body))


@bp.get("/responses/<response_id>")
def retrieve(response_id: str) -> Response:
    """The response; with ``stream=true`` its events after ``starting_after``."""
    args = _query(_retrieve)
    return _reply(
        service.retrieve(
            platform(),
            owner(),
            response_id,
            stream=args["stream"],
            starting_after=args.get("starting_after"),
        )
    )


@bp.post("/responses/<response_id>/cancel")
def cancel(response_id: str) -> Response:
    return jsonify(store.cancel(platform(), owner(), response_id))


@bp.delete("/responses/<response_id>")
def delete(response_id: str) -> Response:
    return jsonify(store.delete(platform(), owner(), response_id))


@bp.get("/responses/<response_id>/input_items")
def input_items(response_id: str) -> Response:
    args = _query(_items)
    return jsonify(
        store.input_items(
            platform(),
            owner(),
            response_id,
            after=args.get("after"),
            limit=args["limit"],
            order=args["order"],
        )
    )
