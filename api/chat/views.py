"""``POST /v1/chat/completions``."""

from __future__ import annotations

from flask import Blueprint, Response

from api.context import owner, platform
from api.sse import reply
from api.validation import body
from inference_platform.endpoints.chat_completions import serving
from inference_platform.endpoints.chat_completions.protocol import (
    ChatCompletionCreateRequestSchema,
)

bp = Blueprint("chat", __name__, url_prefix="/v1")
_create = ChatCompletionCreateRequestSchema()


@bp.post("/chat/completions")
def create() -> Response:
    """Create a chat completion in any tier, streamed or whole."""
    return reply(serving.create(platform(), owner(), body(_create)))
