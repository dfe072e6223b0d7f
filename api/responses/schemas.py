"""Query-argument schemas of ``/v1/responses`` (the body schema is in the core)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from inference_platform.schemas.responses import ResponseCreateSchema

__all__ = ["InputItemsArgs", "ResponseCreateSchema", "RetrieveArgs"]


class RetrieveArgs(Schema):
    stream = fields.Boolean(load_default=False)
    starting_after = fields.Integer(allow_none=True, validate=validate.Range(min=-1))
    include_obfuscation = fields.Boolean()
    include = fields.List(fields.String(), data_key="include[]")


class InputItemsArgs(Schema):
    after = fields.String()
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    order = fields.String(load_default="desc", validate=validate.OneOf(("asc", "desc")))
    include = fields.List(fields.String(), data_key="include[]")
