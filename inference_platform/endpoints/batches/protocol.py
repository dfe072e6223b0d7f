"""``/v1/batches``: the request schemas and the ``batch`` object.

A batch line's ``body`` is validated later by the schema of the endpoint it names, so a line
is accepted exactly when the same request sent directly would be.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, TypedDict

from marshmallow import EXCLUDE, Schema, fields, validate

from inference_platform.db.models import Batch
from inference_platform.endpoints.protocol import Int, described
from inference_platform.generation import ENDPOINTS

# Statuses after which a batch changes no more.
BATCH_FINAL_STATUSES = ("completed", "failed", "expired", "cancelled")


class OutputExpiresAfterSchema(Schema):
    anchor = fields.String(
        required=True,
        validate=validate.OneOf(("created_at",)),
        metadata=described("Only `created_at`."),
    )
    seconds = Int(
        required=True,
        validate=validate.Range(min=3600, max=2592000),
        metadata=described("Lifetime of the output and error files, 1 hour to 30 days."),
    )


class BatchCreateRequestSchema(Schema):
    """``completion_window`` takes the windows this deployment is configured with."""

    input_file_id = fields.String(
        required=True,
        validate=validate.Length(min=1),
        metadata=described("A JSONL file uploaded with purpose `batch`."),
    )
    endpoint = fields.String(
        required=True,
        validate=validate.OneOf(
            ENDPOINTS, error="this server runs batches for {choices}; got {input!r}."
        ),
        metadata=described("The endpoint every line calls."),
    )
    completion_window = fields.String(
        required=True, metadata=described("How long the batch may take, e.g. `24h`.")
    )
    metadata = fields.Dict(
        keys=fields.String(validate=validate.Length(max=64)),
        values=fields.String(validate=validate.Length(max=512)),
        allow_none=True,
        validate=validate.Length(max=16),
        metadata=described("Up to 16 string pairs kept with the batch."),
    )
    output_expires_after = fields.Nested(
        OutputExpiresAfterSchema,
        allow_none=True,
        metadata=described("When the output and error files expire."),
    )

    def __init__(self, windows: Mapping[str, int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fields["completion_window"].validators = [
            validate.OneOf(windows, error="expected one of {choices}; got {input!r}.")
        ]


class BatchRetryRequestSchema(Schema):
    """An extension: ``POST /v1/batches/{id}/retry`` runs a finished batch's failed, expired
    and cancelled lines again, as a new batch."""

    completion_window = fields.String(
        load_default=None,
        metadata=described("The new batch's window (default: the original's)."),
    )

    def __init__(self, windows: Mapping[str, int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fields["completion_window"].validators = [
            validate.OneOf(windows, error="expected one of {choices}; got {input!r}.")
        ]


class BatchListRequestSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    after = fields.String(
        load_default=None, metadata=described("List the batches after this batch id.")
    )
    limit = fields.Integer(
        load_default=20,
        validate=validate.Range(min=1, max=100),
        metadata=described("Page size, 1 to 100."),
    )


# -- objects -------------------------------------------------------------------------------


class BatchObject(TypedDict):
    id: str
    object: Literal["batch"]
    endpoint: str
    errors: dict[str, Any] | None
    input_file_id: str
    completion_window: str
    status: str
    output_file_id: str | None
    error_file_id: str | None
    created_at: int | None
    in_progress_at: int | None
    expires_at: int | None
    finalizing_at: int | None
    completed_at: int | None
    failed_at: int | None
    expired_at: int | None
    cancelling_at: int | None
    cancelled_at: int | None
    request_counts: dict[str, int]  # {total, completed, failed}
    metadata: dict[str, str] | None
    model: str | None
    usage: dict[str, Any]
    # An extension: when the capacity model expects the batch to finish (unix seconds), null
    # when unknown or once it has ended.
    estimated_completion_at: int | None


def usage_object(
    input_tokens: int = 0, output_tokens: int = 0, cached_tokens: int = 0
) -> dict[str, Any]:
    """A batch's ``usage``, as the Responses API counts tokens; ``cached_tokens`` is the part
    of the input the engine's prefix cache served."""
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached_tokens},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def _ts(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def batch_object(b: Batch, counts: dict[str, int], usage: dict[str, Any]) -> BatchObject:
    return {
        "id": b.id,
        "object": "batch",
        "endpoint": b.endpoint,
        "errors": b.errors,
        "input_file_id": b.input_file_id,
        "completion_window": b.completion_window,
        "status": b.status,
        "output_file_id": b.output_file_id,
        "error_file_id": b.error_file_id,
        "created_at": _ts(b.created_at),
        "in_progress_at": _ts(b.in_progress_at),
        "expires_at": _ts(b.expires_at),
        "finalizing_at": _ts(b.finalizing_at),
        "completed_at": _ts(b.completed_at),
        "failed_at": _ts(b.failed_at),
        "expired_at": _ts(b.expired_at),
        "cancelling_at": _ts(b.cancelling_at),
        "cancelled_at": _ts(b.cancelled_at),
        "request_counts": counts,
        "metadata": b.metadata_,
        "model": b.model,
        "usage": usage,
        "estimated_completion_at": (
            None if b.status in BATCH_FINAL_STATUSES else _ts(b.estimated_completion_at)
        ),
    }
