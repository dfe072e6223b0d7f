"""``/v1/conversations``: the request schemas and the ``conversation`` object.

Items are Responses input items (messages with text, function calls and their outputs),
checked by the same field as ``POST /v1/responses``'s ``input``.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from inference_platform.db.models import Conversation
from inference_platform.endpoints.protocol import described
from inference_platform.endpoints.refusals import RefusesUnsupported
from inference_platform.endpoints.responses.protocol import (
    InputField,
    InputItemListRequestSchema,
)
from inference_platform.generation import RESPONSES

# OpenAI's limit on items sent in one request.
MAX_ITEMS = 20


class ItemsField(InputField):
    """A list of up to 20 input items."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, list) and len(value) > MAX_ITEMS:
            raise ValidationError(f"at most {MAX_ITEMS} items may be added at a time.")
        if isinstance(value, list) and not value:
            return []
        if not isinstance(value, list):
            raise ValidationError("must be a list of items.")
        return super()._deserialize(value, attr, data, **kwargs)


def _metadata(**kwargs: Any) -> fields.Dict:
    return fields.Dict(
        keys=fields.String(validate=validate.Length(max=64)),
        values=fields.String(validate=validate.Length(max=512)),
        validate=validate.Length(max=16),
        metadata=described("Up to 16 string pairs kept with the conversation."),
        **kwargs,
    )


class ConversationCreateRequestSchema(Schema):
    items = ItemsField(allow_none=True, metadata=described("Initial items, up to 20."))
    metadata = _metadata(allow_none=True)


class ConversationUpdateRequestSchema(Schema):
    metadata = _metadata(required=True, allow_none=True)


class IncludeSchema(RefusesUnsupported):
    """``include``: nothing extra exists for text items, so only an empty list is taken
    (Responses' table of unsupported fields says so)."""

    endpoint = RESPONSES


class ItemCreateRequestSchema(Schema):
    items = ItemsField(
        required=True,
        validate=validate.Length(min=1),
        metadata=described("Items to append, 1 to 20."),
    )


class ItemListRequestSchema(InputItemListRequestSchema):
    """Query of ``GET /v1/conversations/{id}/items``: a page as of a response's input items."""


def conversation_object(row: Conversation) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "conversation",
        "created_at": int(row.created_at.timestamp()),
        "metadata": row.metadata_ or {},
    }


def deleted(conversation_id: str) -> dict[str, Any]:
    return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}
