"""The model's own tokenizer and chat template, shared by the tokenizer-backed engines.

The transformers and vLLM engines both render chat prompts and count prompt tokens here, so the
context-length check, ``count_tokens`` and the prompt the model sees agree across engines. vLLM
is handed token ids produced by this class rather than text, for the same reason.

Nothing here imports torch; transformers is imported only when a tokenizer is loaded.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from inference_platform.engines.base import EngineError


class ModelTokenizer:
    """A Hugging Face tokenizer behind a lock.

    Fast (Rust) tokenizers must not be used by two threads at once, and callers reach the
    tokenizer both from Celery task threads (``render_chat``, ``count_tokens``) and from the
    engine loop (encode, decode).
    """

    def __init__(self, tokenizer: Any) -> None:
        self.raw = tokenizer
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: str, *, trust_remote_code: bool = False) -> ModelTokenizer:
        """Load the tokenizer (and its chat template) saved next to a model."""
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code))

    # ----------------------------------------------------------------------------- special ids

    @property
    def eos_token_id(self) -> int | None:
        value = self.raw.eos_token_id
        return int(value) if isinstance(value, int) else None

    @property
    def pad_token_id(self) -> int | None:
        value = self.raw.pad_token_id
        return int(value) if isinstance(value, int) else None

    # ----------------------------------------------------------------------------- text

    def encode(self, text: str) -> list[int]:
        """Token ids of a rendered prompt."""
        # Chat templates already write the BOS token; do not add a second one.
        bos = self.raw.bos_token
        add_special = not (bos and text.startswith(bos))
        with self._lock:
            return list(self.raw.encode(text, add_special_tokens=add_special))

    def decode(self, ids: list[int]) -> str:
        with self._lock:
            return str(self.raw.decode(ids, skip_special_tokens=True))

    def render_chat(
        self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None
    ) -> str:
        """The model's chat template applied to ``messages``, ending with the assistant turn;
        ``tools`` (function definitions) go to templates that present them."""
        extra: dict[str, Any] = {"tools": list(tools)} if tools else {}
        try:
            with self._lock:
                rendered = self.raw.apply_chat_template(
                    list(messages), tokenize=False, add_generation_prompt=True, **extra
                )
        except Exception as exc:  # jinja errors, missing template, raise_exception(...)
            raise EngineError(f"cannot apply the chat template: {exc}", param="messages") from exc
        return str(rendered)


__all__ = ["ModelTokenizer"]
