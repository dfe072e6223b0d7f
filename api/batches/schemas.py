"""Schemas of the Batch API, and the body checks batch lines go through.

A batch line's ``body`` is validated by the same schema as the endpoint it names, so a line
is accepted exactly when the same request sent directly would be.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate

from api.chat.schemas import ChatCompletionPostSchema
from api.completions.schemas import CompletionPostSchema
from api.validation import load
from inference_platform.batches.lines import BodyCheck
from inference_platform.batches.outputs import supported_endpoints
from inference_platform.errors import invalid
from inference_platform.generation import CHAT, COMPLETIONS, RESPONSES


class OutputExpiresAfter(Schema):
    anchor = fields.String(required=True, validate=validate.OneOf(("created_at",)))
    seconds = fields.Integer(required=True, validate=validate.Range(min=3600, max=2592000))


class CreateBatchSchema(Schema):
    input_file_id = fields.String(required=True, validate=validate.Length(min=1))
    endpoint = fields.String(required=True)
    completion_window = fields.String(required=True)
    metadata = fields.Dict(
        keys=fields.String(validate=validate.Length(max=64)),
        values=fields.String(validate=validate.Length(max=512)),
        allow_none=True,
        validate=validate.Length(max=16),
    )
    output_expires_after = fields.Nested(OutputExpiresAfter, allow_none=True)


class ListBatchesQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    after = fields.String(load_default=None)
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


def line_checks() -> dict[str, BodyCheck]:
    """Fresh schema instances per validation run (runs may overlap on the control role)."""
    checks: dict[str, BodyCheck] = {
        CHAT: partial(load, ChatCompletionPostSchema()),
        COMPLETIONS: partial(load, CompletionPostSchema()),
    }
    if RESPONSES in supported_endpoints():
        from api.responses.schemas import ResponseCreateSchema

        checks[RESPONSES] = partial(_response_line, ResponseCreateSchema())
    return checks


def _response_line(schema: Schema, body: dict[str, Any]) -> dict[str, Any]:
    loaded = load(schema, body)
    # A batch line runs later and on its own: it cannot continue a stored conversation.
    if loaded.get("previous_response_id"):
        raise invalid("`previous_response_id` is not supported in batch lines; send the whole "
                      "conversation in `input`.", param="previous_response_id")
    return loaded
