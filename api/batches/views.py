"""``/v1/batches``: create, retrieve, list and cancel."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from api.batches.schemas import CreateBatchSchema, ListBatchesQuery
from api.context import owner, platform
from api.validation import json_body, load
from inference_platform.batches import lifecycle, service

bp = Blueprint("batches", __name__, url_prefix="/v1")
_create = CreateBatchSchema()
_list = ListBatchesQuery()


@bp.post("/batches")
def create() -> Response:
    body = load(_create, json_body())
    expires = body.get("output_expires_after") or {}
    return jsonify(
        service.create(
            platform(),
            owner(),
            input_file_id=body["input_file_id"],
            endpoint=body["endpoint"],
            completion_window=body["completion_window"],
            metadata=body.get("metadata"),
            output_expires_seconds=expires.get("seconds"),
        )
    )


@bp.get("/batches/<batch_id>")
def retrieve(batch_id: str) -> Response:
    return jsonify(service.retrieve(platform(), owner(), batch_id))


@bp.get("/batches")
def list_batches() -> Response:
    query = load(_list, request.args.to_dict())
    return jsonify(service.list_batches(platform(), owner(), **query))


@bp.post("/batches/<batch_id>/cancel")
def cancel(batch_id: str) -> Response:
    return jsonify(lifecycle.cancel(platform(), owner(), batch_id))
