"""Request generation for the fuzz suite: every route, bodies drawn from the request schemas.

For each schema field the strategy draws a value of the field's own kind or a hostile one
(wrong types, NUL and lone surrogates, integers past 64 bits, deep nesting), plus fields the
schema does not know. Token counts stay small where they are valid, so a case never asks the
engine for hours of output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from marshmallow import Schema, fields

from inference_platform.endpoints.batches.protocol import BatchCreateRequestSchema
from inference_platform.endpoints.chat_completions.protocol import ChatCompletionCreateRequestSchema
from inference_platform.endpoints.completions.protocol import CompletionCreateRequestSchema
from inference_platform.endpoints.responses.protocol import ResponseCreateRequestSchema

MODELS = ("sim", "no-workers", "unknown-model", "")
HOSTILE_TEXT = ("a\x00b", "\x00", "x\ud800", "\udfff", "ok", "", "💥" * 3, "a" * 300)
BIG_INTS = (-(2**63) - 1, -1, 0, 2**31, 2**63, 2**64, 2**70)
TOKEN_FIELDS = {"max_tokens", "max_completion_tokens", "max_output_tokens", "n", "best_of"}

hostile_text = st.sampled_from(HOSTILE_TEXT) | st.text(max_size=20)
scalars = (
    st.none()
    | st.booleans()
    | st.sampled_from(BIG_INTS)
    | st.integers(-5, 5)
    | st.floats(allow_nan=False, allow_infinity=False)
    | hostile_text
)
any_json = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=8,
)


def deep(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def _message() -> st.SearchStrategy[Any]:
    role = st.sampled_from(("user", "system", "assistant", "developer", "tool", "function", 7))
    content = hostile_text | st.lists(
        st.fixed_dictionaries(
            {"type": st.sampled_from(("text", "image_url")), "text": hostile_text}
        ),
        max_size=2,
    )
    return st.fixed_dictionaries({"role": role, "content": content}) | any_json


def _field_value(name: str, field: fields.Field[Any]) -> st.SearchStrategy[Any]:
    if name == "model":
        return st.sampled_from(MODELS) | hostile_text
    if name == "messages":
        return st.lists(_message(), max_size=3) | any_json
    if name in ("input", "prompt"):
        return hostile_text | st.lists(hostile_text, max_size=2) | st.lists(_message(), max_size=2)
    if name in TOKEN_FIELDS:
        return st.integers(1, 8) | st.sampled_from((0, -1, 1.5, "4", 2**31, 2**63, None))
    if name == "background" or name == "stream":
        return st.booleans() | st.sampled_from(("yes", 1, None))
    if isinstance(field, fields.Boolean):
        return st.booleans() | scalars
    if isinstance(field, fields.Integer | fields.Float):
        return st.integers(-3, 3) | st.sampled_from(BIG_INTS) | st.floats(-3, 3) | scalars
    if isinstance(field, fields.Dict):
        return st.dictionaries(hostile_text, hostile_text, max_size=3) | any_json
    return hostile_text | any_json


def body_for(schema: Schema) -> st.SearchStrategy[dict[str, Any]]:
    """A request body for ``schema``: some of its fields (model usually), maybe extra ones."""
    known = {name: _field_value(name, f) for name, f in schema.fields.items() if not f.dump_only}
    picks = st.fixed_dictionaries({}, optional={name: strategy for name, strategy in known.items()})
    extra = st.dictionaries(hostile_text, any_json, max_size=2)
    return st.tuples(picks, extra, st.sampled_from(MODELS[:1] * 3 + MODELS)).map(
        lambda t: {"model": t[2], **t[1], **t[0]}
    )


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    json: Any = None
    raw: bytes | None = None
    files: dict[str, Any] | None = None
    data: dict[str, str] | None = None


POST_BODIES = {
    "/v1/chat/completions": ChatCompletionCreateRequestSchema(),
    "/v1/completions": CompletionCreateRequestSchema(),
    "/v1/responses": ResponseCreateRequestSchema(),
    "/v1/batches": BatchCreateRequestSchema({"24h": 86400}),
}
ids = st.sampled_from(("file-x", "batch_x", "resp_x", "%00", "a%ud800", "x" * 300, "..", "%2F"))
queries = st.dictionaries(
    st.sampled_from(("after", "limit", "order", "purpose", "offset", "stream", "starting_after")),
    st.sampled_from(("", "1", "-1", "%00", "abc", str(2**70), "true", "desc")),
    max_size=3,
)


def _query(q: dict[str, str]) -> str:
    return ("?" + "&".join(f"{k}={v}" for k, v in q.items())) if q else ""


def _get(template: str) -> st.SearchStrategy[Request]:
    return st.tuples(ids, queries).map(
        lambda t: Request("GET", template.format(id=t[0]) + _query(t[1]))
    )


posts = st.sampled_from(sorted(POST_BODIES)).flatmap(
    lambda path: body_for(POST_BODIES[path]).map(lambda b: Request("POST", path, json=b))
)
raw_posts = st.tuples(
    st.sampled_from(sorted(POST_BODIES)),
    st.sampled_from(
        (
            b"{not json",
            b"[]",
            b"null",
            b'"\\u0000"',
            b'{"model": "sim", "messages": "\\ud800"}',
            b'{"model": "sim", "messages": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            json.dumps({"model": "sim", "input": deep(70)}).encode(),
        )
    ),
).map(lambda t: Request("POST", t[0], raw=t[1]))
uploads = st.tuples(
    st.sampled_from(("batch", "assistants", "", "\x00")),
    st.binary(max_size=200) | st.just(b'{"custom_id": "a\\ud800"}\n'),
    st.integers(0, 40),
).map(
    lambda t: Request(
        "POST",
        "/v1/files",
        files={"file": ("f.jsonl", t[1])},
        data={"purpose": t[0], **{f"extra{i}": "x" for i in range(t[2])}},
    )
)
others = (
    _get("/v1/files/{id}")
    | _get("/v1/files/{id}/content")
    | _get("/v1/batches/{id}")
    | _get("/v1/responses/{id}")
    | _get("/v1/responses/{id}/input_items")
    | _get("/v1/models/{id}")
    | _get("/v1/files")
    | _get("/v1/batches")
    | _get("/v1/models")
    | ids.map(lambda i: Request("POST", f"/v1/batches/{i}/cancel"))
    | ids.map(lambda i: Request("POST", f"/v1/responses/{i}/cancel"))
    | ids.map(lambda i: Request("DELETE", f"/v1/responses/{i}"))
    | ids.map(lambda i: Request("DELETE", f"/v1/files/{i}"))
)
requests = posts | posts | raw_posts | uploads | others
