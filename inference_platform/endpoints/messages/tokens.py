"""``POST /v1/messages/count_tokens``: the prompt's tokens as the serving engine counts them.

The API host renders the prompt with the model's own chat template and tokenizer, loaded once
per process (the simulated engine needs neither), so the count is the ``input_tokens`` a
request with the same body reports.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from inference_platform.catalog import ModelSpec
from inference_platform.engines import build_engine
from inference_platform.engines.tokenizer import ModelTokenizer
from inference_platform.errors import unavailable
from inference_platform.generation import chat_messages

# (messages, tools) -> prompt tokens
Counter = Callable[[Sequence[dict[str, Any]], Sequence[dict[str, Any]] | None], int]
_counters: dict[str, Counter] = {}
_lock = threading.Lock()


def _load(spec: ModelSpec) -> Counter:
    if spec.engine == "simulated":
        engine = build_engine(spec.engine, spec.name, spec.path, spec.engine_args)
        return lambda messages, tools: engine.count_tokens(engine.render_chat(messages, tools))
    path = spec.engine_args.get("tokenizer") or spec.path
    try:
        tok = ModelTokenizer.load(
            str(path), trust_remote_code=bool(spec.engine_args.get("trust_remote_code"))
        )
    except Exception as exc:  # no tokenizer at that path on this host
        raise unavailable(
            f"Token counting for `{spec.name}` needs its tokenizer on the API host: {exc}",
            code="tokenizer_unavailable",
        ) from exc
    return lambda messages, tools: len(tok.encode(tok.render_chat(messages, tools)))


def _counter(spec: ModelSpec) -> Counter:
    with _lock:
        found = _counters.get(spec.name)
        if found is None:
            found = _counters[spec.name] = _load(spec)
        return found


def count(spec: ModelSpec, body: Mapping[str, Any]) -> int:
    """Prompt tokens of a Chat body (what ``generation.plan`` renders for it)."""
    tools = None if body.get("tool_choice") == "none" else body.get("tools")
    return _counter(spec)(chat_messages(dict(body)), tools or None)
