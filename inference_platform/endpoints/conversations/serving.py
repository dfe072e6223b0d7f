"""Serving ``/v1/conversations`` and its items, always filtered by owner."""

from __future__ import annotations

from typing import Any

from inference_platform import conversations
from inference_platform.endpoints.conversations.protocol import conversation_object, deleted
from inference_platform.endpoints.protocol import Page, page
from inference_platform.endpoints.responses.inputs import input_items
from inference_platform.platform import Platform


def create(platform: Platform, owner: str, body: dict[str, Any]) -> dict[str, Any]:
    items = input_items(body.get("items") or [])
    row = conversations.create(platform, owner, items, body.get("metadata") or {})
    return conversation_object(row)


def retrieve(platform: Platform, owner: str, conversation_id: str) -> dict[str, Any]:
    return conversation_object(conversations.get(platform, owner, conversation_id))


def update(
    platform: Platform, owner: str, conversation_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    metadata = body.get("metadata") or {}
    return conversation_object(conversations.update(platform, owner, conversation_id, metadata))


def delete(platform: Platform, owner: str, conversation_id: str) -> dict[str, Any]:
    conversations.remove(platform, owner, conversation_id)
    return deleted(conversation_id)


def add_items(platform: Platform, owner: str, conversation_id: str, body: dict[str, Any]) -> Page:
    """The items as stored (with their ids), as a list."""
    added = conversations.add(platform, owner, conversation_id, input_items(body["items"]))
    return page(added)


def list_items(platform: Platform, owner: str, conversation_id: str, args: dict[str, Any]) -> Page:
    found, more = conversations.page(
        platform,
        owner,
        conversation_id,
        after=args.get("after"),
        limit=args["limit"],
        order=args["order"],
    )
    return page(found, more)


def retrieve_item(
    platform: Platform, owner: str, conversation_id: str, item_id: str
) -> dict[str, Any]:
    item: dict[str, Any] = conversations.get_item(platform, owner, conversation_id, item_id)
    return item


def delete_item(
    platform: Platform, owner: str, conversation_id: str, item_id: str
) -> dict[str, Any]:
    """Delete one item; answers with the conversation."""
    conversations.delete_item(platform, owner, conversation_id, item_id)
    return retrieve(platform, owner, conversation_id)
