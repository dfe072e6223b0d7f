"""``GET /v1/organization/usage/completions`` and ``GET /v1/organization/costs``: the key's
tenant's tokens and cost per time bucket, as ``client.admin.organization.usage`` reads them."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from api.auth import require_admin
from api.context import owner, platform
from api.validation import load
from inference_platform.endpoints.usage import serving
from inference_platform.endpoints.usage.protocol import (
    Names,
    UsageCompletionsRequestSchema,
    UsageCostsRequestSchema,
)

bp = Blueprint("usage", __name__, url_prefix="/v1/organization")
# Usage, costs and webhook endpoints are the organization's: admin keys only, as at OpenAI.
bp.before_request(require_admin)
_completions = UsageCompletionsRequestSchema()
_costs = UsageCostsRequestSchema()


def _args(schema: Any) -> dict[str, Any]:
    """Query arguments; list ones may come repeated, bracketed (the SDK) or comma-separated."""
    args: dict[str, Any] = {}
    for key in request.args:
        name = key.removesuffix("[]")
        field = schema.fields.get(name)
        if isinstance(field, Names):
            args.setdefault(name, []).extend(request.args.getlist(key))
        else:
            args[name] = request.args[key]
    return load(schema, args)


@bp.get("/usage/completions")
def completions() -> Response:
    """Tokens and requests per time bucket, grouped by model, service_tier, batch or
    api_key_id."""
    return jsonify(serving.completions(platform(), owner(), _args(_completions)))


@bp.get("/costs")
def costs() -> Response:
    """Cost in USD per day from the catalog's tariffs, grouped by line_item, model,
    service_tier, batch or api_key_id."""
    return jsonify(serving.costs_page(platform(), owner(), _args(_costs)))
