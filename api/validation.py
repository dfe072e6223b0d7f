"""Request parsing for views: the JSON body, then the core's schemas."""

from __future__ import annotations

from typing import Any

from flask import request

from inference_platform.errors import invalid
from inference_platform.schemas.common import load

__all__ = ["json_body", "load"]


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise invalid(
            "We could not parse the JSON body of your request. Send a JSON object with "
            "`Content-Type: application/json`.",
            code="invalid_json",
        )
    return body
