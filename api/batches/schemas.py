"""Schemas of the Batch API, and the body checks batch lines go through.

A batch line's ``body`` is validated by the same schema as the endpoint it names, so a line
is accepted exactly when the same request sent directly would be.
"""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate


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
