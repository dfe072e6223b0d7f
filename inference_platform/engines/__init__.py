"""Inference engines behind one contract (see ``base``), built by kind.

Engine modules are imported lazily: the simulated engine must work without torch, and the
vLLM engine only on hosts where vLLM is installed.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any

from inference_platform.engines.base import (
    ContextLengthError,
    Delta,
    Engine,
    EngineAborted,
    EngineError,
    GenerationRequest,
    SamplingParams,
)

# kind -> (module, class name)
ENGINE_KINDS: dict[str, tuple[str, str]] = {
    "transformers": ("inference_platform.engines.transformers_engine", "TransformersEngine"),
    "simulated": ("inference_platform.engines.simulated", "SimulatedEngine"),
    "vllm": ("inference_platform.engines.vllm_engine", "VLLMEngine"),
}


def build_engine(
    kind: str,
    model_name: str,
    path: str | None,
    engine_args: dict[str, Any] | None = None,
    *,
    tool_parser: str | None = None,
) -> Engine:
    """Instantiate (not start) the engine of ``kind`` for one model; ``tool_parser`` is the
    catalog's tool-call parser (vllm engine only)."""
    try:
        module_name, class_name = ENGINE_KINDS[kind]
    except KeyError:
        known = ", ".join(sorted(ENGINE_KINDS))
        raise ValueError(f"unknown engine kind {kind!r}; expected one of: {known}") from None
    engine_cls = getattr(importlib.import_module(module_name), class_name)
    engine: Engine = engine_cls(model_name, path, dict(engine_args or {}))
    engine.tool_parser = tool_parser
    return engine


def engine_version(kind: str) -> str:
    """Name and version of the library behind an engine kind, for banners and logs.

    Read from package metadata, so nothing heavy (torch, vLLM) is imported.
    """
    if kind == "vllm":
        from inference_platform.engines.vllm_engine import vllm_version

        version = vllm_version()
        return f"vLLM {version}" if version else "vLLM (not installed)"
    if kind == "transformers":
        try:
            return f"transformers {metadata.version('transformers')}"
        except metadata.PackageNotFoundError:
            return "transformers (not installed)"
    return kind


__all__ = [
    "ENGINE_KINDS",
    "ContextLengthError",
    "Delta",
    "Engine",
    "EngineAborted",
    "EngineError",
    "GenerationRequest",
    "SamplingParams",
    "build_engine",
    "engine_version",
]
