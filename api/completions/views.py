"""``POST /v1/completions``."""

from __future__ import annotations

from flask import Blueprint, Response

from api.context import owner, platform
from api.sse import reply
from api.validation import body
from inference_platform.endpoints.completions import serving
from inference_platform.endpoints.completions.protocol import CompletionCreateRequestSchema

bp = Blueprint("completions", __name__, url_prefix="/v1")
_create = CompletionCreateRequestSchema()


@bp.post("/completions")
def create() -> Response:
    """Create a text completion in any tier, streamed or whole."""
    return reply(serving.create(platform(), owner(), body(_create)))
