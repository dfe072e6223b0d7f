"""Query schemas of the usage and costs routes, and their bucket and result objects, in the
shapes the ``openai`` SDK's ``admin.organization.usage`` reads.

This server has no projects, users or Agents API: asking to group or filter by them is a 400
that says so, never a silently empty answer.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from inference_platform.endpoints.protocol import described

# Bucket widths in seconds, and (default, most) buckets per page, as OpenAI documents them.
WIDTHS = {"1m": 60, "1h": 3600, "1d": 86400}
COMPLETIONS_LIMITS = {"1m": (60, 1440), "1h": (24, 168), "1d": (7, 31)}
COSTS_LIMITS = (7, 180)

COMPLETIONS_GROUPS = ("model", "service_tier", "batch", "api_key_id")
# Costs also group by ``line_item``; ``model``, ``service_tier`` and ``batch`` are this
# server's additions (results carry them as extra fields).
COSTS_GROUPS = ("line_item", "model", "service_tier", "batch", "api_key_id")
UNSUPPORTED = ("project_id", "user_id", "api_source")


class Names(fields.Field[list[str]]):
    """A list of names: repeated or bracketed query arguments, or one comma-separated."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[str]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            raise ValidationError("must be a list of strings.")
        return [part.strip() for v in items for part in v.split(",") if part.strip()]


def _groups(allowed: tuple[str, ...]) -> Names:
    def check(values: list[str]) -> None:
        for v in values:
            if v in UNSUPPORTED:
                raise ValidationError(
                    f"grouping by `{v}` is not supported: this server has no projects, users "
                    "or Agents API."
                )
            if v not in allowed:
                raise ValidationError(f"`{v}` is not one of {', '.join(allowed)}.")

    return Names(
        load_default=list,
        validate=check,
        metadata=described(f"Group results by any of: {', '.join(allowed)}."),
    )


def _no_projects(name: str) -> Names:
    def refuse(values: list[str]) -> None:
        if values:
            raise ValidationError(f"this server has no projects or users to filter by ({name}).")

    return Names(validate=refuse, metadata=described("Not supported: this server has none."))


# The last day a timestamp can name (9999-12-31, as Postgres and Python date it): later
# times would overflow the database's arithmetic, and no usage lies there.
MAX_TIME = 253402214400


class _Range(Schema):
    start_time = fields.Integer(
        required=True,
        validate=validate.Range(min=0, max=MAX_TIME),
        metadata=described("Start (Unix seconds) of the range, inclusive."),
    )
    end_time = fields.Integer(
        load_default=None,
        validate=validate.Range(min=0, max=MAX_TIME),
        metadata=described("End (Unix seconds) of the range, exclusive; default now."),
    )
    limit = fields.Integer(
        load_default=None, validate=validate.Range(min=1), metadata=described("Buckets per page.")
    )
    page = fields.String(load_default=None, metadata=described("`next_page` of the previous page."))
    api_key_ids = Names(metadata=described("Only usage of these API keys."))
    project_ids = _no_projects("project_ids")


class UsageCompletionsRequestSchema(_Range):
    bucket_width = fields.String(
        load_default="1d",
        validate=validate.OneOf(tuple(WIDTHS)),
        metadata=described("Width of each time bucket: `1m`, `1h` or `1d` (default)."),
    )
    group_by = _groups(COMPLETIONS_GROUPS)
    models = Names(metadata=described("Only usage of these models."))
    batch = fields.Boolean(
        load_default=None,
        truthy={"true"},
        falsy={"false"},
        metadata=described("true: batch work only; false: everything but batches."),
    )
    user_ids = _no_projects("user_ids")


class UsageCostsRequestSchema(_Range):
    bucket_width = fields.String(
        load_default="1d",
        validate=validate.OneOf(("1d",)),
        metadata=described("Width of each time bucket: only `1d`."),
    )
    group_by = _groups(COSTS_GROUPS)
    line_items = Names(metadata=described("Only these line items (as the results name them)."))


# -- objects -------------------------------------------------------------------------------


def bucket(start: int, end: int, results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "bucket", "start_time": start, "end_time": end, "results": results}


def page(buckets: list[dict[str, Any]], next_page: str | None) -> dict[str, Any]:
    return {
        "object": "page",
        "data": buckets,
        "has_more": next_page is not None,
        "next_page": next_page,
    }


def completions_result(
    group: dict[str, Any],
    *,
    requests: int,
    input_tokens: int,
    output_tokens: int,
    cached_tokens: int = 0,
) -> dict[str, Any]:
    """``organization.usage.completions.result``; fields not grouped by are null.
    ``input_cached_tokens``: the part of the input the engine's prefix cache served."""
    return {
        "object": "organization.usage.completions.result",
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "num_model_requests": requests,
        "input_cached_tokens": cached_tokens,
        "input_audio_tokens": 0,
        "output_audio_tokens": 0,
        "project_id": None,
        "user_id": None,
        "api_key_id": group.get("api_key_id"),
        "model": group.get("model"),
        "batch": group.get("batch"),
        "service_tier": group.get("service_tier"),
    }


def costs_result(
    group: dict[str, Any], *, value: float, quantity: int | None = None
) -> dict[str, Any]:
    """``organization.costs.result`` in USD; ``quantity`` (tokens) with ``line_item``."""
    result: dict[str, Any] = {
        "object": "organization.costs.result",
        "amount": {"value": round(value, 10), "currency": "usd"},
        "line_item": group.get("line_item"),
        "project_id": None,
        "api_key_id": group.get("api_key_id"),
    }
    if "line_item" in group:
        result["quantity"] = quantity
        result["quantity_unit"] = "tokens"
    for extra in ("model", "service_tier", "batch"):
        if extra in group:
            result[extra] = group[extra]
    return result
