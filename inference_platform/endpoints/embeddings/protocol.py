"""``POST /v1/embeddings``: the request schema and the ``list`` of ``embedding`` objects.

Vectors travel from the worker as OpenAI's base64 (little-endian float32 bytes, which the SDK
decodes with ``numpy.frombuffer(..., "float32")``); ``encoding_format: "float"`` turns them
back into numbers, so both formats carry exactly the same float32 values.
"""

from __future__ import annotations

import array
import base64
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict

from marshmallow import Schema, ValidationError, fields, validate

from inference_platform.endpoints.protocol import Int, described

# OpenAI's limit on the inputs of one request.
MAX_INPUTS = 2048
MAX_TOKEN_ID = 2**31 - 1
ENCODING_FORMATS = ("float", "base64")

Input = str | list[int]


def _token_ids(value: Any) -> bool:
    """A non-empty list of JSON integers (``true`` is not a token id)."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(t, int) and not isinstance(t, bool) for t in value)
    )


class InputField(fields.Field[Any]):
    """``input``: a string, a list of strings, a list of token ids, or a list of such lists;
    never empty, no empty string, at most ``MAX_INPUTS`` inputs."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            if not value:
                raise ValidationError("must not be an empty string.")
            return value
        if not isinstance(value, list) or not value:
            raise ValidationError(
                "must be a string, a list of strings, a list of token ids or a list of lists "
                "of token ids, and not empty."
            )
        items = [value] if _token_ids(value) else value
        if len(items) > MAX_INPUTS:
            raise ValidationError(f"at most {MAX_INPUTS} inputs per request; got {len(items)}.")
        for i, item in enumerate(items):
            problem = _item_problem(item)
            if problem:
                where = {i: [problem]} if items is value else [problem]
                raise ValidationError(where)
        return value


def _item_problem(item: Any) -> str | None:
    if isinstance(item, str):
        return None if item else "must not be an empty string."
    if _token_ids(item):
        if any(t < 0 or t > MAX_TOKEN_ID for t in item):
            return f"token ids must be integers from 0 to {MAX_TOKEN_ID}."
        return None
    if isinstance(item, list) and not item:
        return "must not be an empty list of token ids."
    return "must be a string or a non-empty list of token ids."


class EmbeddingCreateRequestSchema(Schema):
    model = fields.String(
        required=True,
        validate=validate.Length(min=1),
        metadata=described('A catalog model declared with `"task": "embed"`.'),
    )
    input = InputField(
        required=True,
        metadata=described(
            "Text or token ids to embed: a string, a list of strings, a list of token ids, "
            f"or a list of lists of token ids (at most {MAX_INPUTS} inputs)."
        ),
    )
    encoding_format = fields.String(
        allow_none=True,
        validate=validate.OneOf(ENCODING_FORMATS),
        metadata=described(
            "`float` (default): lists of numbers; `base64`: little-endian float32 bytes."
        ),
    )
    dimensions = Int(
        allow_none=True,
        validate=validate.Range(min=1, max=MAX_TOKEN_ID),
        metadata=described(
            "Length of the vectors; only models trained to shorten them (Matryoshka) accept "
            "another length than their own."
        ),
    )
    user = fields.String(allow_none=True, metadata=described("An end-user id; kept, not used."))


def inputs(body: Mapping[str, Any]) -> list[Input]:
    """The request's inputs, one per embedding, in order."""
    raw = body["input"]
    if isinstance(raw, str) or _token_ids(raw):
        return [raw]
    return list(raw)


def input_count(body: Mapping[str, Any]) -> int:
    return len(inputs(body))


# -- vectors -------------------------------------------------------------------------------


def encode_vector(vector: bytes) -> str:
    """OpenAI's base64 of a vector given as little-endian float32 bytes."""
    return base64.b64encode(vector).decode("ascii")


def decode_vector(text: str) -> list[float]:
    """The numbers of a base64 vector."""
    values = array.array("f", base64.b64decode(text))
    if sys.byteorder == "big":
        values.byteswap()
    return values.tolist()


# -- objects -------------------------------------------------------------------------------


class Embedding(TypedDict):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str


class EmbeddingUsage(TypedDict):
    prompt_tokens: int
    total_tokens: int


class CreateEmbeddingResponse(TypedDict):
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


def embedding_response(
    *, model: str, vectors: Sequence[str], prompt_tokens: int, encoding_format: str | None
) -> CreateEmbeddingResponse:
    """The response for ``vectors`` (base64, in input order)."""
    as_base64 = encoding_format == "base64"
    return {
        "object": "list",
        "data": [
            {
                "object": "embedding",
                "index": i,
                "embedding": vector if as_base64 else decode_vector(vector),
            }
            for i, vector in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }
