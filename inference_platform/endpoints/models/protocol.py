"""``/v1/models``: the ``model`` object and the list of them."""

from __future__ import annotations

from typing import Literal, TypedDict

from inference_platform.catalog import ModelSpec


class Model(TypedDict):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(TypedDict):
    object: Literal["list"]
    data: list[Model]


def model_object(spec: ModelSpec) -> Model:
    return {"id": spec.name, "object": "model", "created": spec.created, "owned_by": spec.owned_by}


def model_list(specs: list[ModelSpec]) -> ModelList:
    return {"object": "list", "data": [model_object(s) for s in specs]}
