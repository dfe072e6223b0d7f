"""Request generation for the fuzz suite: every route (read from the app's url_map), bodies
drawn from the request schemas where a route has one, and with every kind of key.

For each schema field the strategy draws a value of the field's own kind or a hostile one
(wrong types, NUL and lone surrogates, integers past 64 bits, deep nesting), plus fields the
schema does not know. Token counts stay small where they are valid, so a case never asks the
engine for hours of output.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from flask import Flask
from hypothesis import strategies as st
from marshmallow import Schema, fields

from inference_platform.endpoints.batches.protocol import BatchCreateRequestSchema
from inference_platform.endpoints.chat_completions.protocol import ChatCompletionCreateRequestSchema
from inference_platform.endpoints.completions.protocol import CompletionCreateRequestSchema
from inference_platform.endpoints.conversations.protocol import (
    ConversationCreateRequestSchema,
)
from inference_platform.endpoints.messages.protocol import (
    MessageBatchCreateRequestSchema,
    MessageCountTokensRequestSchema,
    MessageCreateRequestSchema,
)
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
    # Whose request: the admin key, a member key, no key, or a key that does not exist.
    auth: str = "admin"


POST_BODIES = {
    "/v1/chat/completions": ChatCompletionCreateRequestSchema(),
    "/v1/completions": CompletionCreateRequestSchema(),
    "/v1/responses": ResponseCreateRequestSchema(),
    "/v1/batches": BatchCreateRequestSchema({"24h": 86400}),
    # Anthropic's Messages routes answer in Anthropic's envelope (checked below).
    "/v1/messages": MessageCreateRequestSchema(),
    "/v1/messages/count_tokens": MessageCountTokensRequestSchema(),
    "/v1/messages/batches": MessageBatchCreateRequestSchema(),
    "/v1/conversations": ConversationCreateRequestSchema(),
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

# -- every route of the app ------------------------------------------------------------------

AUTHS = ("admin", "admin", "member", "none", "bad")
SKIPPED_METHODS = {"HEAD", "OPTIONS"}
ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
path_values = ids | hostile_text.filter(lambda t: "/" not in t and "?" not in t and "#" not in t)
# Keys an endpoint family's body (or a console form) is likely to read, and hostile ones.
body_keys = st.sampled_from(
    (
        "model", "messages", "input", "prompt", "max_tokens", "url", "name", "event_types",
        "role", "api_key", "csrf_token", "metadata", "items", "requests", "limit",
    )
) | hostile_text  # fmt: skip
generic_bodies = st.dictionaries(body_keys, any_json, max_size=5)
# Form fields travel as UTF-8: a lone surrogate cannot be sent that way at all.
encodable = hostile_text.filter(lambda t: not any("\ud800" <= c <= "\udfff" for c in t))
forms = st.dictionaries(body_keys.filter(lambda k: k.isprintable()), encodable, max_size=4)
raw_bodies = st.sampled_from((b"{not json", b"[]", b"null", b'"\\u0000"', b"[" * 3000))
route_queries = st.dictionaries(
    st.sampled_from(("after", "limit", "order", "start_time", "end_time", "page", "group_by"))
    | hostile_text,
    st.sampled_from(("", "1", "-1", "abc", str(2**70), "bucket_٣", "10000000000000000"))
    | hostile_text,
    max_size=3,
)


@dataclass(frozen=True)
class Route:
    method: str
    rule: str


def routes_of(app: Flask) -> list[Route]:
    """Every (method, rule) the app serves: new endpoint families and pages are fuzzed as
    soon as they are registered, with no list here to keep up to date."""
    found = {
        Route(method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in (rule.methods or set()) - SKIPPED_METHODS
    }
    return sorted(found, key=lambda r: (r.rule, r.method))


def _fill(rule: str, values: list[str]) -> str:
    parts = iter(values)
    return ARGUMENT.sub(lambda _: quote(next(parts), safe="", errors="surrogatepass"), rule)


def _route_request(route: Route) -> st.SearchStrategy[Request]:
    slots = len(ARGUMENT.findall(route.rule))
    path = st.lists(path_values, min_size=slots, max_size=slots).map(
        lambda values: _fill(route.rule, values)
    )
    query = route_queries.map(lambda q: ("?" + urlencode(q, errors="surrogatepass")) if q else "")
    if route.method in ("GET", "DELETE"):
        body: st.SearchStrategy[dict[str, Any]] = st.just({})
    elif route.rule in POST_BODIES:
        body = body_for(POST_BODIES[route.rule]).map(lambda b: {"json": b})
    else:
        body = (
            generic_bodies.map(lambda b: {"json": b})
            | forms.map(lambda f: {"data": f})
            | raw_bodies.map(lambda r: {"raw": r})
        )
    return st.tuples(path, query, body, st.sampled_from(AUTHS)).map(
        lambda t: Request(route.method, t[0] + t[1], auth=t[3], **t[2])
    )


def every_route(app: Flask) -> st.SearchStrategy[Request]:
    """A request to any route of ``app``, each route equally likely."""
    return st.sampled_from(routes_of(app)).flatmap(_route_request)
