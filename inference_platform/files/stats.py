"""What an uploaded batch file asks of the engine, counted while it is uploaded.

Per model: its lines, their prompt tokens (estimated from the text, about four characters a
token: the API has no tokenizer, and prompt tokens weigh little next to output ones) and their
output token limits (``max_tokens`` and kin, times ``n``); lines that set no limit are counted
apart, so admission applies the model's default when the batch is created. Lines that are not
valid JSON are skipped here: validation reports them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

CHARS_PER_TOKEN = 4
_LIMIT_FIELDS = ("max_completion_tokens", "max_tokens", "max_output_tokens")
# The fields whose text reaches the model as the prompt.
_PROMPT_FIELDS = ("messages", "prompt", "input", "instructions")
_EMBEDDINGS = "/v1/embeddings"
_COMPLETIONS = "/v1/completions"


class LineStats:
    """Feed it the file's bytes in pieces; ``as_dict`` is what the file row keeps."""

    def __init__(self) -> None:
        self._rest = b""
        self.models: dict[str, dict[str, int]] = {}

    def write(self, data: bytes) -> None:
        parts = (self._rest + data).split(b"\n")
        self._rest = parts.pop()
        for line in parts:
            self._line(line)

    def close(self) -> None:
        if self._rest:
            self._line(self._rest)
            self._rest = b""

    def as_dict(self) -> dict[str, Any]:
        return {"models": self.models}

    def _line(self, raw: bytes) -> None:
        if not raw.strip():
            return
        try:
            item = json.loads(raw)
        except (ValueError, RecursionError):
            return
        body = item.get("body") if isinstance(item, dict) else None
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return
        entry = self.models.setdefault(
            body["model"][:200],
            {"lines": 0, "prompt_tokens": 0, "output_tokens": 0, "unbounded": 0, "max_limit": 0},
        )
        entry["lines"] += 1
        entry["prompt_tokens"] += (
            sum(_text_length(body.get(f)) for f in _PROMPT_FIELDS) // CHARS_PER_TOKEN
        )
        limit, copies = _output(item.get("url"), body)
        if limit is None:
            entry["unbounded"] += copies
        else:
            entry["output_tokens"] += limit * copies
            entry["max_limit"] = max(entry.get("max_limit", 0), limit)


def _output(url: Any, body: dict[str, Any]) -> tuple[int | None, int]:
    """A line's output limit per choice (None: the model's default) and its choices."""
    if url == _EMBEDDINGS:
        return 0, 1
    given = body.get("n")
    n: int = given if isinstance(given, int) and given > 0 else 1
    prompts = body.get("prompt")
    if (
        url == _COMPLETIONS
        and isinstance(prompts, list)
        and prompts
        and isinstance(prompts[0], str)
    ):
        n *= len(prompts)
    for name in _LIMIT_FIELDS:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value, max(1, n)
    return (16 if url == _COMPLETIONS else None), max(1, n)


def _text_length(value: Any) -> int:
    return sum(len(s) for s in _strings(value, 0))


def _strings(value: Any, depth: int) -> Iterator[str]:
    if depth > 8:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, depth + 1)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v, depth + 1)


def demand_of(
    stats: dict[str, Any] | None, default_max_tokens: int
) -> tuple[str, dict[str, int]] | None:
    """``(model, {lines, prompt_tokens, output_tokens})`` of a file of one model's lines; None
    when it names several models or none (validation refuses those)."""
    models = (stats or {}).get("models") or {}
    if len(models) != 1:
        return None
    ((model, entry),) = models.items()
    output = entry["output_tokens"] + entry["unbounded"] * default_max_tokens
    return model, {
        "lines": entry["lines"],
        "prompt_tokens": entry["prompt_tokens"],
        "output_tokens": output,
    }


def largest_limit(stats: dict[str, Any] | None, model: str) -> int:
    """The largest output limit one line for ``model`` sets (0 when none sets one, or the
    file was counted before this was kept)."""
    entry = ((stats or {}).get("models") or {}).get(model) or {}
    return int(entry.get("max_limit", 0))
