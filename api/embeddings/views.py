"""``POST /v1/embeddings``."""

from __future__ import annotations

from flask import Blueprint, Response

from api.context import owner, platform
from api.sse import reply
from api.validation import body
from inference_platform.endpoints.embeddings import serving
from inference_platform.endpoints.embeddings.protocol import EmbeddingCreateRequestSchema

bp = Blueprint("embeddings", __name__, url_prefix="/v1")
_create = EmbeddingCreateRequestSchema()


@bp.post("/embeddings")
def create() -> Response:
    """Create embedding vectors for one or more inputs."""
    return reply(serving.create(platform(), owner(), body(_create)))
