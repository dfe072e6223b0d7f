"""Query schemas of the Files API (the upload itself is a streamed multipart body)."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate


class ListFilesQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    after = fields.String(load_default=None)
    limit = fields.Integer(load_default=10000, validate=validate.Range(min=1, max=10000))
    order = fields.String(load_default="desc", validate=validate.OneOf(("asc", "desc")))
    purpose = fields.String(load_default=None)


class ContentQuery(Schema):
    """``offset``/``limit`` in lines: the partial-results extension for batch output files."""

    class Meta:
        unknown = EXCLUDE

    offset = fields.Integer(load_default=0, validate=validate.Range(min=0))
    limit = fields.Integer(load_default=None, validate=validate.Range(min=1))
