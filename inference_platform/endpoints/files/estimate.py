"""``GET /v1/files/{file_id}/cost_estimate`` (an extension; OpenAI has no such route): what a
batch of an uploaded batch file would cost, before anything runs (``batches.estimate``)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from inference_platform.batches import estimate
from inference_platform.endpoints.protocol import described
from inference_platform.errors import invalid
from inference_platform.files import store
from inference_platform.platform import Platform


class FileCostEstimateRequestSchema(Schema):
    model = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=200),
        metadata=described("Price the lines for this model (default: the model they name)."),
    )
    completion_window = fields.String(
        load_default="24h",
        metadata=described("The batch window whose tariff applies: `24h` (default) or `1h`."),
    )


def cost_estimate(
    platform: Platform, owner: str, file_id: str, *, model: str | None, completion_window: str
) -> dict[str, Any]:
    """The ``batch.cost_estimate`` of one of the caller's batch input files."""
    found, _size = store.find(platform, owner, file_id)
    if found.kind != "upload" or found.purpose != "batch":
        raise invalid(f"The file {file_id} is not a batch input file (purpose `batch`).", "file_id")
    lines = store.upload_lines(platform, file_id)
    result = estimate.estimate(
        lines, platform.catalog, platform.settings, model=model, window=completion_window
    )
    return {"file_id": file_id, **result}
