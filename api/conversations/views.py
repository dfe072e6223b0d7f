"""``/v1/conversations``: create, retrieve, update, delete, and the items of each."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api.context import owner, platform
from api.validation import body, query
from inference_platform.endpoints.conversations import serving
from inference_platform.endpoints.conversations.protocol import (
    ConversationCreateRequestSchema,
    ConversationUpdateRequestSchema,
    IncludeSchema,
    ItemCreateRequestSchema,
    ItemListRequestSchema,
)

bp = Blueprint("conversations", __name__, url_prefix="/v1/conversations")
_create = ConversationCreateRequestSchema()
_update = ConversationUpdateRequestSchema()
_add = ItemCreateRequestSchema()
_list = ItemListRequestSchema()
_include = IncludeSchema()


@bp.post("")
def create() -> Response:
    """Create a conversation, with up to 20 initial items."""
    return jsonify(serving.create(platform(), owner(), body(_create)))


@bp.get("/<conversation_id>")
def retrieve(conversation_id: str) -> Response:
    """One conversation."""
    return jsonify(serving.retrieve(platform(), owner(), conversation_id))


@bp.post("/<conversation_id>")
def update(conversation_id: str) -> Response:
    """Replace a conversation's metadata."""
    return jsonify(serving.update(platform(), owner(), conversation_id, body(_update)))


@bp.delete("/<conversation_id>")
def delete(conversation_id: str) -> Response:
    """Delete a conversation."""
    return jsonify(serving.delete(platform(), owner(), conversation_id))


@bp.post("/<conversation_id>/items")
def add_items(conversation_id: str) -> Response:
    """Append up to 20 items."""
    query(_include)
    return jsonify(serving.add_items(platform(), owner(), conversation_id, body(_add)))


@bp.get("/<conversation_id>/items")
def list_items(conversation_id: str) -> Response:
    """A page of the conversation's items, newest first by default."""
    return jsonify(serving.list_items(platform(), owner(), conversation_id, query(_list)))


@bp.get("/<conversation_id>/items/<item_id>")
def retrieve_item(conversation_id: str, item_id: str) -> Response:
    """One item."""
    query(_include)
    return jsonify(serving.retrieve_item(platform(), owner(), conversation_id, item_id))


@bp.delete("/<conversation_id>/items/<item_id>")
def delete_item(conversation_id: str, item_id: str) -> Response:
    """Delete one item; answers with the conversation."""
    return jsonify(serving.delete_item(platform(), owner(), conversation_id, item_id))
