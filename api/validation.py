"""Request parsing for views: the JSON body and query strings, loaded by the family's schema."""

from __future__ import annotations

from typing import Any

from flask import request
from marshmallow import Schema

from inference_platform.endpoints.protocol import load
from inference_platform.errors import invalid

__all__ = ["body", "json_body", "load", "query"]


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
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


def query(schema: Schema) -> dict[str, Any]:
    """Query arguments loaded by ``schema``; a list argument comes as ``name[]=a&name[]=b``
    (as the SDK sends it)."""
    args: dict[str, Any] = request.args.to_dict()
    for key in [k for k in args if k.endswith("[]")]:
        del args[key]
        args[key.removesuffix("[]")] = request.args.getlist(key)
    return load(schema, args)
