"""Serving ``/v1/models``: the catalog, which needs no backing service."""

from __future__ import annotations

from inference_platform.endpoints.models.protocol import Model, ModelList, model_list, model_object
from inference_platform.platform import Platform


def list_models(platform: Platform) -> ModelList:
    """Every model in the catalog."""
    return model_list(list(platform.catalog))


def retrieve(platform: Platform, model_id: str) -> Model:
    """One model, or 404 model_not_found."""
    return model_object(platform.model(model_id))
