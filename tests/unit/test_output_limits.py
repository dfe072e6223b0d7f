"""An output limit past the model's whole context window is refused before any queue."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inference_platform.catalog import ModelSpec
from inference_platform.endpoints.output_limits import check_output_limit, context_window
from inference_platform.errors import PlatformError


def test_the_window_comes_from_the_catalog_or_the_model_config(tmp_path: Path) -> None:
    assert context_window(ModelSpec("a", "vllm", engine_args={"max_model_len": 4096})) == 4096
    assert context_window(ModelSpec("b", "simulated")) == 8192
    (tmp_path / "config.json").write_text(
        json.dumps({"max_position_embeddings": 2048, "rope_scaling": {"factor": 4.0}})
    )
    assert context_window(ModelSpec("c", "vllm", path=str(tmp_path))) == 8192
    # A hub id or a path only the workers see: unknown here, left to the engine.
    assert context_window(ModelSpec("d", "vllm", path="org/model")) is None


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens", "max_output_tokens"])
def test_an_impossible_limit_is_a_400_naming_the_field(field: str) -> None:
    spec = ModelSpec("sim", "simulated")
    with pytest.raises(PlatformError) as err:
        check_output_limit(spec, {"model": "sim", field: 10**9})
    assert (err.value.status, err.value.code, err.value.param) == (400, "invalid_value", field)
    assert "at most 8192" in err.value.message
    check_output_limit(spec, {"model": "sim", field: 8192})  # fits an empty prompt
    check_output_limit(spec, {"model": "sim", field: "many"})  # the schema's to refuse
    check_output_limit(ModelSpec("x", "vllm", path="org/model"), {field: 10**9})
