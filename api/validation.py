"""Request parsing for views: the JSON body and query strings, loaded by the family's schema.

Every body and query goes through ``endpoints.protocol.load``, which refuses text Postgres
cannot store; ``check_path`` does the same for ids in the URL before any view runs."""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from marshmallow import Schema

from inference_platform.endpoints.protocol import MAX_DEPTH, load, unstorable
from inference_platform.errors import invalid

__all__ = ["body", "init_app", "json_body", "load", "optional_body", "query"]


def json_body() -> dict[str, Any]:
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # the parser's own stack: far deeper than any schema allows
        raise invalid(
            f"The JSON body is nested too deeply (at most {MAX_DEPTH} levels).",
            code="invalid_json",
        ) from None
    if not isinstance(body, dict):
        raise invalid(
            "We could not parse the JSON body of your request. Send a JSON object with "
            "`Content-Type: application/json`.",
            code="invalid_json",
        )
    return body


def body(schema: Schema) -> dict[str, Any]:
    """The JSON body loaded by ``schema`` (400 naming the param when it does not fit)."""
    return load(schema, json_body())


def optional_body(schema: Schema) -> dict[str, Any]:
    """``body`` for routes whose every field is optional: no body at all loads as ``{}`` (the
    SDK's ``client.post(path, cast_to=...)`` sends none, and neither does a bare curl)."""
    return body(schema) if request.get_data(cache=True).strip() else load(schema, {})


def query(schema: Schema) -> dict[str, Any]:
    """Query arguments loaded by ``schema``; a list argument comes as ``name[]=a&name[]=b``
    (as the SDK sends it)."""
    args: dict[str, Any] = request.args.to_dict()
    for key in [k for k in args if k.endswith("[]")]:
        del args[key]
        args[key.removesuffix("[]")] = request.args.getlist(key)
    return load(schema, args)


def check_path() -> None:
    """A 400 naming the path parameter (``file_id``...) whose text no id can contain."""
    for name, value in (request.view_args or {}).items():
        problem = unstorable(value) if isinstance(value, str) else None
        if problem:
            raise invalid(f"Invalid value for '{name}': {problem}.", name)


def init_app(app: Flask) -> None:
    app.before_request(check_path)
