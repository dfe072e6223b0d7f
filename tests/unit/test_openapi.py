"""The OpenAPI document: generated, valid OpenAPI 3.1, and complete."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from openapi_spec_validator import validate

from api import create_app
from api.docs.openapi import UNDOCUMENTED
from inference_platform.settings import Settings


@pytest.fixture(scope="module")
def app() -> Flask:
    # No service is contacted: the platform connects on first use only.
    return create_app(
        Settings(database_url="postgresql://u@127.0.0.1/none", redis_url="redis://127.0.0.1/0")
    )


@pytest.fixture(scope="module")
def spec(app: Flask) -> dict[str, Any]:
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.get_json()
    return document


def test_document_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_every_served_route_is_documented(app: Flask, spec: dict[str, Any]) -> None:
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.rule in UNDOCUMENTED:
            continue
        path = rule.rule
        for converter in rule.arguments:
            path = path.replace(f"<path:{converter}>", "{" + converter + "}")
            path = path.replace(f"<{converter}>", "{" + converter + "}")
        methods = (rule.methods or set()) - {"HEAD", "OPTIONS"}
        for method in methods:
            if method.lower() not in spec["paths"].get(path, {}):
                missing.append(f"{method} {path}")
    assert not missing


def test_request_schemas_carry_their_field_descriptions(spec: dict[str, Any]) -> None:
    chat = spec["paths"]["/v1/chat/completions"]["post"]
    ref = chat["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert "messages" in schema["required"]
    assert schema["properties"]["messages"]["description"]
    usage = spec["paths"]["/v1/organization/usage/completions"]["get"]
    params = {p["name"]: p for p in usage["parameters"]}
    assert params["start_time"]["required"] is True
    assert "group_by" in params and params["group_by"]["description"]
    upload = spec["paths"]["/v1/files"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload


def test_docs_page_is_served_without_a_cdn(app: Flask) -> None:
    client = app.test_client()
    page = client.get("/docs/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/openapi.json" in html
    # Scripts and styles come from this server, never from a CDN.
    assert re.findall(r'(?:src|href)="((?:https?:)?//[^"]*)"', html) == []
    with client.get("/docs/swagger-ui-bundle.js") as bundle:
        assert bundle.status_code == 200
