"""Serving ``POST /v1/embeddings``: realtime only (batch lines run as batch work).

The request takes the realtime path of every other endpoint (``realtime.<model>`` queue, the
worker's realtime feed, events over Redis); its one event after ``Started`` is the ``End``
that carries every vector.
"""

from __future__ import annotations

from typing import Any

from inference_platform import ids, realtime
from inference_platform.endpoints.embeddings.protocol import (
    CreateEmbeddingResponse,
    embedding_response,
    input_count,
)
from inference_platform.errors import PlatformError
from inference_platform.events import End
from inference_platform.generation import EMBEDDINGS
from inference_platform.platform import Platform

# What realtime requests report as their tier; embeddings have no ``service_tier`` field.
SERVICE_TIER = "default"


def create(platform: Platform, owner: str, body: dict[str, Any]) -> CreateEmbeddingResponse:
    """Embed every input of ``body`` and answer with the vectors in input order."""
    job = realtime.submit(
        platform,
        owner=owner,
        endpoint=EMBEDDINGS,
        body=body,
        id_prefix=ids.REQUEST,
        service_tier=SERVICE_TIER,
    )
    end: End | None = None
    for event in realtime.follow(platform, job):
        if isinstance(event, End):
            end = event
    if end is None or end.embeddings is None or len(end.embeddings) != input_count(body):
        raise PlatformError(500, "The worker's answer had no embeddings.", code="server_error")
    return embedding_response(
        model=job.model,
        vectors=end.embeddings,
        prompt_tokens=end.usage.prompt_tokens,
        encoding_format=body.get("encoding_format"),
    )
