"""The body checks batch lines go through.

A batch line's ``body`` is validated by the same schema as the endpoint it names, so a line
is accepted exactly when the same request sent directly would be.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from marshmallow import Schema

from inference_platform.batches.lines import BodyCheck
from inference_platform.endpoints.chat_completions.protocol import ChatCompletionCreateRequestSchema
from inference_platform.endpoints.completions.protocol import CompletionCreateRequestSchema
from inference_platform.endpoints.embeddings.protocol import EmbeddingCreateRequestSchema
from inference_platform.endpoints.protocol import load
from inference_platform.endpoints.responses.protocol import ResponseCreateRequestSchema
from inference_platform.errors import invalid
from inference_platform.generation import CHAT, COMPLETIONS, EMBEDDINGS, RESPONSES


def line_checks() -> dict[str, BodyCheck]:
    """Fresh schema instances per validation run (runs may overlap on the control role)."""
    return {
        CHAT: partial(load, ChatCompletionCreateRequestSchema()),
        COMPLETIONS: partial(load, CompletionCreateRequestSchema()),
        RESPONSES: partial(_response_line, ResponseCreateRequestSchema()),
        EMBEDDINGS: partial(load, EmbeddingCreateRequestSchema()),
    }


def _response_line(schema: Schema, body: dict[str, Any]) -> dict[str, Any]:
    loaded = load(schema, body)
    # A batch line runs later and on its own: it cannot continue a stored conversation.
    if loaded.get("previous_response_id"):
        raise invalid(
            "`previous_response_id` is not supported in batch lines; send the whole "
            "conversation in `input`.",
            param="previous_response_id",
        )
    if loaded.get("conversation"):
        raise invalid(
            "`conversation` is not supported in batch lines; send the whole conversation "
            "in `input`.",
            param="conversation",
        )
    return loaded
