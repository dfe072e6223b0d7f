"""Schemas for ``POST /v1/completions`` (legacy text completions)."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate

from inference_platform.schemas.common import SamplingFields, Stop
from inference_platform.schemas.unsupported import UnsupportedFields


class PromptField(fields.Field):
    """``prompt``: a string or a list of strings. Token-id prompts are refused explicitly."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return value
        if isinstance(value, list) and value and all(isinstance(p, str) for p in value):
            return value
        if (
            isinstance(value, list)
            and value
            and all(isinstance(p, int) or isinstance(p, list) for p in value)
        ):
            raise ValidationError("token-id prompts are not supported; send text.")
        raise ValidationError("must be a string or a non-empty list of strings.")


class CompletionPostSchema(SamplingFields, UnsupportedFields):
    prompt = PromptField(required=True)
    max_tokens = fields.Integer(allow_none=True, load_default=16, validate=validate.Range(min=1))
    n = fields.Integer(allow_none=True, load_default=1, validate=validate.Range(min=1, max=128))
    stop = Stop(allow_none=True)
    echo = fields.Boolean(allow_none=True, load_default=False)
    suffix = fields.String(allow_none=True)
    best_of = fields.Integer(allow_none=True)

    def load(self, data: Any, **kwargs: Any) -> Any:
        out = super().load(data, **kwargs)
        if out.get("suffix"):
            raise ValidationError({"suffix": ["`suffix` is not supported by this server."]})
        if out.get("best_of") not in (None, 1, out.get("n")):
            raise ValidationError({"best_of": ["`best_of` is not supported by this server."]})
        if out.get("max_tokens") is None:
            out["max_tokens"] = 16
        if out.get("n") is None:
            out["n"] = 1
        return out
