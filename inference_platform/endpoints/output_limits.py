"""The impossible is refused at the door: an output limit no request to the model could ever
use (``max_tokens`` past the model's whole context window) is a 400 naming the field, before
any rate limiter or queue sees the request, in every tier and in batch lines alike.

The API never loads an engine, so the window comes from what the catalog says: the declared
``engine_args.max_model_len``, the simulated engine's own default, or the model's
``config.json`` on this host (an upper bound of what vLLM or transformers derive from it). A
model whose window cannot be known here is checked by its engine, as before.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from inference_platform.catalog import ModelSpec
from inference_platform.errors import invalid

# The request fields that bound a request's output, by endpoint family.
OUTPUT_FIELDS = ("max_completion_tokens", "max_tokens", "max_output_tokens")
# Keys of a Hugging Face config that bound the positions a model reads (vLLM reads the same).
_WINDOW_KEYS = (
    "max_position_embeddings",
    "n_positions",
    "max_seq_len",
    "seq_length",
    "model_max_length",
    "max_sequence_length",
    "max_seq_length",
    "seq_len",
)
SIMULATED_WINDOW = 8192  # the simulated engine's default ``max_model_len``


def context_window(spec: ModelSpec) -> int | None:
    """The most tokens (prompt and output together) ``spec`` can ever hold, or None."""
    declared = spec.engine_args.get("max_model_len")
    if declared:
        try:
            return int(declared)
        except (TypeError, ValueError):
            return None
    if spec.engine == "simulated":
        return SIMULATED_WINDOW
    return _config_window(spec.path) if spec.path else None


@lru_cache(maxsize=64)
def _config_window(path: str) -> int | None:
    try:
        config = json.loads((Path(path) / "config.json").read_text())
    except (OSError, ValueError):
        return None  # a hub id or a path only the workers' host has
    if not isinstance(config, dict):
        return None
    if isinstance(config.get("text_config"), dict):
        config = {**config, **config["text_config"]}
    found = [v for k in _WINDOW_KEYS if isinstance(v := config.get(k), int) and v > 0]
    if not found:
        return None
    # The largest bound times any RoPE scaling: never below what an engine would allow.
    scaling = config.get("rope_scaling")
    factor = scaling.get("factor", 1) if isinstance(scaling, dict) else 1
    factor = factor if isinstance(factor, int | float) and factor > 1 else 1
    return int(max(found) * factor)


def check_output_limit(spec: ModelSpec, body: dict[str, Any]) -> None:
    """A 400 ``invalid_value`` naming the field when ``body`` asks for more output than
    ``spec`` can ever produce; values of the wrong type are the schema's to refuse."""
    window = context_window(spec)
    if window is None:
        return
    for name in OUTPUT_FIELDS:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > window:
            raise invalid(
                f"{name} is too large: {value}. This model supports at most {window} "
                f"completion tokens, whereas you provided {value}.",
                name,
                code="invalid_value",
            )
