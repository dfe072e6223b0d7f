"""The OpenAPI 3.1 document, generated from the app's routes and the endpoint families'
marshmallow request schemas (their field descriptions become the document's).

Every route in ``app.url_map`` gets an operation, so a new route is documented the moment it
is registered: its summary and description come from the view's docstring, its path
parameters from the rule, and its request body or query parameters from the request schema
the view loads (found among the names the view's code uses: an instance loaded with
``body(...)`` or ``query(...)``, or a schema class built per request).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import Schema, fields
from werkzeug.routing import Rule

from api import validation
from inference_platform.endpoints.protocol import described

TITLE = "Inference Platform API"
VERSION = "0.1.0"
# Files, not operations: Flask's static folder and the viewer's own assets.
UNDOCUMENTED = {"/static/<path:filename>", "/docs/<path:path>"}
# Views without a docstring of their own (the viewer's page comes from its package).
SUMMARIES = {"swagger_ui.show": "This document in Swagger UI, for people."}
_METHODS = ("get", "post", "delete", "put", "patch")
_CONVERTER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


class ErrorSchema(Schema):
    message = fields.String(required=True, metadata=described("What went wrong, for people."))
    type = fields.String(required=True, metadata=described("The error's class."))
    param = fields.String(allow_none=True, metadata=described("The offending parameter."))
    code = fields.String(allow_none=True, metadata=described("A machine-readable code."))


class ErrorEnvelopeSchema(Schema):
    """The OpenAI error envelope every failure is answered with."""

    error = fields.Nested(ErrorSchema, required=True)


class FileUploadSchema(Schema):
    file = fields.Raw(
        required=True, metadata={"type": "string", "format": "binary", **described("The file.")}
    )
    purpose = fields.String(required=True, metadata=described("`batch` for batch input files."))
    expires_after = fields.Raw(metadata=described("`expires_after[anchor]` and `[seconds]`."))


def _path(rule: Rule) -> str:
    return _CONVERTER.sub(r"{\1}", rule.rule)


def _request_schemas(view: Callable[..., Any], app: Flask) -> tuple[Schema | None, Schema | None]:
    """(body schema, query schema) the view loads, found in its code's names."""
    code = getattr(view, "__code__", None)
    if code is None:
        return None, None
    names = code.co_names
    found: Schema | None = None
    for name in names:
        value = view.__globals__.get(name)
        if isinstance(value, Schema):
            found = value
        elif inspect.isclass(value) and issubclass(value, Schema):
            found = _instance(value, app)
    if found is None:
        return None, None
    # A JSON body is what ``body(schema)`` loads; any other schema reads the query string.
    loads_body = "body" in names and view.__globals__.get("body") is validation.body
    return (found, None) if loads_body else (None, found)


def _instance(cls: type[Schema], app: Flask) -> Schema:
    """A schema built per request takes this deployment's settings (batch windows)."""
    params = inspect.signature(cls.__init__).parameters
    if "windows" in params:
        settings = app.extensions["platform"].settings
        return cls(settings.window_seconds())  # type: ignore[call-arg]
    return cls()


def _operation(rule: Rule, view: Callable[..., Any], app: Flask) -> dict[str, Any]:
    doc = SUMMARIES.get(rule.endpoint) or inspect.getdoc(view) or rule.endpoint
    summary, _, description = doc.partition("\n")
    tag = rule.endpoint.split(".")[0] if "." in rule.endpoint else "operations"
    op: dict[str, Any] = {
        "operationId": rule.endpoint.replace(".", "_") + f"_{_method(rule)}",
        "summary": summary.strip(),
        "tags": [tag],
        "responses": {
            "200": {"description": "Success."},
            "default": {
                "description": "An error, in the OpenAI error envelope.",
                "content": {"application/json": {"schema": ErrorEnvelopeSchema}},
            },
        },
    }
    if description.strip():
        op["description"] = description.strip()
    params: list[dict[str, Any]] = [
        {"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
        for name in sorted(rule.arguments)
    ]
    body, query = _request_schemas(view, app)
    if query is not None:
        params.append({"in": "query", "schema": query})
    if params:
        op["parameters"] = params
    if rule.endpoint == "files.upload":
        op["requestBody"] = {
            "required": True,
            "content": {"multipart/form-data": {"schema": FileUploadSchema}},
        }
    elif body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if rule.rule.startswith("/v1"):
        op["security"] = [{"bearerAuth": []}]
    return op


def _method(rule: Rule) -> str:
    return next(m for m in _METHODS if m.upper() in (rule.methods or ()))


def build_spec(app: Flask) -> dict[str, Any]:
    spec = APISpec(
        title=TITLE,
        version=VERSION,
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
        info={
            "description": "OpenAI-compatible inference in three tiers: realtime, flex and "
            "batch. Send API keys as `Authorization: Bearer sk-...`."
        },
    )
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        if rule.rule in UNDOCUMENTED:
            continue
        view = app.view_functions[rule.endpoint]
        paths.setdefault(_path(rule), {})[_method(rule)] = _operation(rule, view, app)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()
