"""Conversations kept in Postgres, per tenant: their items in order.

Items are stored as the Conversations API lists them (messages, function calls and their
outputs, each with an id unique in its conversation). A response created with
``conversation`` adds its input and output items when it ends: at once for a realtime
response (the API holds its result), and for a background or flex one through a placeholder
row at the response's place in the conversation, replaced by its items the first time the
conversation is read after the job ended (``_settle``). Every read filters by owner: another
tenant's conversation is a 404.

Used by both the Conversations family and Responses' ``conversation`` parameter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, tuple_
from sqlalchemy.orm import Session

from inference_platform import ids
from inference_platform.db.models import Conversation, ConversationItem, Request
from inference_platform.errors import PlatformError, invalid, not_found
from inference_platform.jobs.store import RUNNING
from inference_platform.platform import Platform

CONVERSATION = "conv_"
# Item id prefixes by item type, for items whose given id is missing or taken.
_PREFIXES = {"message": ids.MESSAGE, "function_call": "fc_", "function_call_output": "fco_"}
# Statuses of a response whose items join its conversation.
_KEPT = ("completed", "incomplete")


def missing(conversation_id: str, param: str | None = None) -> PlatformError:
    return not_found(f"Conversation with id '{conversation_id}' not found.", param=param)


def load(s: Session, owner: str, conversation_id: str, param: str | None = None) -> Conversation:
    row = s.scalars(
        select(Conversation).where(
            Conversation.id == conversation_id,
            Conversation.owner == owner,
            Conversation.deleted_at.is_(None),
        )
    ).first()
    if row is None:
        raise missing(conversation_id, param)
    return row


def get(platform: Platform, owner: str, conversation_id: str) -> Conversation:
    with platform.db.session() as s:
        return load(s, owner, conversation_id)


def create(
    platform: Platform, owner: str, items: Sequence[dict[str, Any]], metadata: dict[str, str]
) -> Conversation:
    with platform.db.session() as s:
        row = Conversation(id=ids.new_id(CONVERSATION), owner=owner, metadata_=metadata)
        s.add(row)
        s.flush()
        _insert(s, row.id, items)
        s.refresh(row)
        return row


def update(
    platform: Platform, owner: str, conversation_id: str, metadata: dict[str, str]
) -> Conversation:
    with platform.db.session() as s:
        row = load(s, owner, conversation_id)
        row.metadata_ = metadata
        return row


def remove(platform: Platform, owner: str, conversation_id: str) -> None:
    """Delete: the conversation and its items are no longer reachable."""
    with platform.db.session() as s:
        load(s, owner, conversation_id).deleted_at = func.now()


def _fresh_ids(s: Session, conversation_id: str, items: Sequence[dict[str, Any]]) -> list[Any]:
    """``items`` with ids unique in the conversation (a taken or repeated id gets a new one)."""
    wanted = [item["id"] for item in items]
    taken = set(
        s.scalars(
            select(ConversationItem.item_id).where(
                ConversationItem.conversation_id == conversation_id,
                ConversationItem.item_id.in_(wanted),
            )
        )
    )
    out = []
    for item in items:
        if item["id"] in taken:
            item = {**item, "id": ids.new_id(_PREFIXES.get(item["type"], ids.MESSAGE))}
        taken.add(item["id"])
        out.append(item)
    return out


def _insert(
    s: Session, conversation_id: str, items: Sequence[dict[str, Any]], seq: int | None = None
) -> list[dict[str, Any]]:
    """Append ``items`` (or put them at ``seq``, a placeholder's place)."""
    if not items:
        return []
    kept = _fresh_ids(s, conversation_id, items)
    if seq is None:
        seq = int(s.scalar(select(func.nextval("conversation_item_seq"))) or 0)
    s.execute(
        insert(ConversationItem),
        [
            {
                "conversation_id": conversation_id,
                "seq": seq,
                "sub": sub,
                "item_id": item["id"],
                "item": item,
            }
            for sub, item in enumerate(kept, start=1)
        ],
    )
    return kept


def add(
    platform: Platform, owner: str, conversation_id: str, items: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Append items; returns them with the ids they were stored under."""
    with platform.db.session() as s:
        load(s, owner, conversation_id)
        return _insert(s, conversation_id, items)


def pending(
    platform: Platform,
    conversation_id: str,
    response_id: str,
    input_items: Sequence[dict[str, Any]],
) -> None:
    """Hold the place of a durable response: its input and output join when it ends."""
    with platform.db.session() as s:
        s.add(
            ConversationItem(
                conversation_id=conversation_id,
                response_id=response_id,
                item={"input": list(input_items)},
            )
        )


def _settle(platform: Platform, conversation_id: str) -> None:
    """Replace the placeholders of responses that ended by their items (or by nothing, for
    one that failed or was cancelled). Deleting the placeholder is the claim: two readers
    never both add a response's items."""
    with platform.db.session() as s:
        marks = list(
            s.execute(
                select(ConversationItem.seq, ConversationItem.sub, Request)
                .join(Request, Request.id == ConversationItem.response_id)
                .where(
                    ConversationItem.conversation_id == conversation_id,
                    ConversationItem.response_id.is_not(None),
                    Request.status.not_in(RUNNING),
                )
            )
        )
        for seq, sub, row in marks:
            claimed = s.execute(
                delete(ConversationItem)
                .where(
                    ConversationItem.conversation_id == conversation_id,
                    ConversationItem.seq == seq,
                    ConversationItem.sub == sub,
                )
                .returning(ConversationItem.item)
            ).first()
            if claimed is None or row.status not in _KEPT or not row.result:
                continue
            inputs = list((claimed.item or {}).get("input") or [])
            _insert(s, conversation_id, inputs + list(row.result.get("output") or []), seq)


def _visible(conversation_id: str) -> Any:
    return (
        ConversationItem.conversation_id == conversation_id,
        ConversationItem.item_id.is_not(None),
    )


def items(platform: Platform, owner: str, conversation_id: str, param: str) -> list[Any]:
    """Every item in order (what a response in this conversation continues from)."""
    get_checked(platform, owner, conversation_id, param)
    _settle(platform, conversation_id)
    with platform.db.session() as s:
        query = select(ConversationItem.item).where(*_visible(conversation_id))
        return list(s.scalars(query.order_by(ConversationItem.seq, ConversationItem.sub)))


def get_checked(platform: Platform, owner: str, conversation_id: str, param: str) -> None:
    with platform.db.session() as s:
        load(s, owner, conversation_id, param)


def page(
    platform: Platform,
    owner: str,
    conversation_id: str,
    *,
    after: str | None,
    limit: int,
    order: str,
) -> tuple[list[Any], bool]:
    """A page of items; ``order`` desc lists the newest first."""
    get_checked(platform, owner, conversation_id, "conversation_id")
    _settle(platform, conversation_id)
    key = tuple_(ConversationItem.seq, ConversationItem.sub)
    with platform.db.session() as s:
        query = select(ConversationItem.item).where(*_visible(conversation_id))
        if after is not None:
            cursor = _item_row(s, conversation_id, after, "after")
            at = tuple_(cursor.seq, cursor.sub)
            query = query.where(key < at if order == "desc" else key > at)
        keys: Iterable[Any] = (
            (ConversationItem.seq.desc(), ConversationItem.sub.desc())
            if order == "desc"
            else (ConversationItem.seq, ConversationItem.sub)
        )
        found = list(s.scalars(query.order_by(*keys).limit(limit + 1)))
    return found[:limit], len(found) > limit


def _item_row(s: Session, conversation_id: str, item_id: str, param: str) -> ConversationItem:
    row = s.scalars(
        select(ConversationItem).where(
            ConversationItem.conversation_id == conversation_id,
            ConversationItem.item_id == item_id,
        )
    ).first()
    if row is None:
        if param == "after":
            raise invalid(f"No item with id '{item_id}' in this conversation.", param=param)
        raise not_found(f"Item with id '{item_id}' not found.", param=param)
    return row


def get_item(platform: Platform, owner: str, conversation_id: str, item_id: str) -> Any:
    get_checked(platform, owner, conversation_id, "conversation_id")
    _settle(platform, conversation_id)
    with platform.db.session() as s:
        return _item_row(s, conversation_id, item_id, "item_id").item


def delete_item(platform: Platform, owner: str, conversation_id: str, item_id: str) -> None:
    get_checked(platform, owner, conversation_id, "conversation_id")
    _settle(platform, conversation_id)
    with platform.db.session() as s:
        row = _item_row(s, conversation_id, item_id, "item_id")
        s.delete(row)
