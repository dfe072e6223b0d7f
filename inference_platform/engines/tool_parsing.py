"""vLLM's tool-call parsers, for models that serve ``tool_choice: "auto"``.

Only the vLLM engine imports this module, and vLLM is imported inside it by name: the parser
registry and the request class it reads moved between vLLM versions (0.26 on GPU hosts, 0.32
in the CPU build), so each is looked up where either version keeps it. The parser API used is
the one both share: ``ToolParserManager.get_tool_parser(name)``, a parser built from the
tokenizer, ``adjust_request`` and ``extract_tool_calls(text, request)``.

The whole text is parsed once its generation ends (streams get the calls at the end), and the
result becomes the envelope of ``inference_platform.tool_calls``.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
from typing import Any

from inference_platform.engines.base import EngineError
from inference_platform.tool_calls import wrap

log = logging.getLogger(__name__)

# Where each vLLM version keeps the parser registry and the Chat request class.
_MANAGERS = ("vllm.tool_parsers", "vllm.entrypoints.openai.tool_parsers")
_REQUESTS = (
    "vllm.entrypoints.openai.chat_completion.protocol",
    "vllm.entrypoints.openai.protocol",
)


def _exists(module: str) -> bool:
    """Whether ``module`` is there, parent by parent (``find_spec`` raises for a child of a
    missing package)."""
    parts = module.split(".")
    return all(
        importlib.util.find_spec(".".join(parts[: i + 1])) is not None for i in range(len(parts))
    )


def _first(modules: tuple[str, ...], name: str) -> Any:
    for module in modules:
        # Look the module up first, so a module that exists but fails to import is raised,
        # not skipped.
        if not _exists(module):
            continue
        found = getattr(importlib.import_module(module), name, None)
        if found is not None:
            return found
    raise EngineError(f"this vLLM has no {name} (looked in {', '.join(modules)})")


class ToolCallParser:
    """One of vLLM's tool-call parsers, by name, for one model's tokenizer."""

    def __init__(self, name: str, tokenizer: Any) -> None:
        manager = _first(_MANAGERS, "ToolParserManager")
        try:
            self._cls = manager.get_tool_parser(name)
        except KeyError:
            raise EngineError(
                f"unknown tool_parser {name!r}: not one of this vLLM's tool-call parsers"
            ) from None
        self._request_cls = _first(_REQUESTS, "ChatCompletionRequest")
        self.name = name
        self._tokenizer = tokenizer
        # Built once so a parser that cannot work with this tokenizer fails at start-up.
        self._cls(tokenizer)

    def _request(self, tools: str) -> Any:
        return self._request_cls(
            model="model",
            messages=[{"role": "user", "content": ""}],
            tools=json.loads(tools),
            tool_choice="auto",
        )

    def skip_special_tokens(self, tools: str) -> bool:
        """Whether the text may drop special tokens: some parsers need their markers kept
        (they are special tokens in some vocabularies) and say so by adjusting the request."""
        request = self._cls(self._tokenizer).adjust_request(self._request(tools))
        return bool(getattr(request, "skip_special_tokens", True))

    def parse(self, text: str, tools: str) -> str:
        """The envelope for a whole generated text (plain content when no call is found)."""
        # Parsers keep state between calls: a fresh one per text.
        parser = self._cls(self._tokenizer)
        try:
            info = parser.extract_tool_calls(text, self._request(tools))
        except Exception:  # a parser bug must not lose the text: it is returned as content
            log.exception("the %s tool parser failed; returning the text as content", self.name)
            return wrap(text, [])
        if not info.tools_called or not info.tool_calls:
            return wrap(text, [])
        calls = [(c.function.name, c.function.arguments) for c in info.tool_calls]
        return wrap(info.content or None, calls)


__all__ = ["ToolCallParser"]
