"""A batch file's price before it runs: its tokens, counted the way its engine will count
them, priced at the completion window's tariff next to the realtime one.

Each line is checked as batch validation checks it, its prompts rendered with the model's
chat template and tokenized with its tokenizer (``batches.prompts``). Output is counted at its
upper bound: every choice of every line reaching its output limit (the body's ``max_tokens``
and kin, else the server default within the context window). Cached prompt tokens follow the
engine's prefix cache block by block (``engines.prefix_cache``): each distinct prefix is
counted once, as if the cache held everything the batch shares; lines claimed grouped by
prefix make that likely. The price is a range: ``low`` with that cache reuse, ``high`` with
none; both at the output bound, so a batch whose every line reaches its limit is billed
within it (exactly ``low`` when the engine found every shared prefix cached). Nothing runs.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from inference_platform import costs
from inference_platform.batches import outputs
from inference_platform.batches.checks import line_checks
from inference_platform.batches.lines import LineValidator
from inference_platform.batches.prompts import PromptCounter
from inference_platform.catalog import Catalog, Tariff
from inference_platform.engines.prefix_cache import PrefixCache
from inference_platform.errors import PlatformError, invalid
from inference_platform.generation import EMBEDDINGS, output_limit, prompt_texts
from inference_platform.settings import Settings
from inference_platform.tiers import BATCH, REALTIME


@dataclass
class Totals:
    """Tokens of a batch file, output at its upper bound."""

    lines: int = 0
    prompts: int = 0  # engine prompts, each billed once (n choices share theirs)
    prompt_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    # Lines the engine will refuse (prompt plus output limit past the context): billed nothing.
    too_long: int = 0


class _Counter:
    def __init__(self, counter: PromptCounter, default_max_tokens: int) -> None:
        self.counter = counter
        self.default = default_max_tokens
        block = counter.block
        self.cache = PrefixCache(block) if block else None
        self.totals = Totals()

    def line(self, endpoint: str, body: dict[str, Any]) -> None:
        self.totals.lines += 1
        if endpoint == EMBEDDINGS:
            self._embeddings(body["input"])
            return
        body = outputs.prepare(endpoint, body)
        limit = output_limit(endpoint, body)
        n = int(body.get("n") or 1)
        found = []
        for text in prompt_texts(self.counter.render_chat, endpoint, body):
            tokens = self.counter.tokens(text)
            room = self.counter.max_model_len - len(tokens)
            out = min(self.default, room) if limit is None else limit
            if out > room or room <= 0:
                self.totals.too_long += 1
                return  # the engine refuses the whole line
            found.append((tokens, out))
        for tokens, out in found:
            self.totals.prompts += 1
            self.totals.prompt_tokens += len(tokens)
            self.totals.cached_tokens += self.cache.serve(tokens) if self.cache else 0
            self.totals.output_tokens += out * n

    def _embeddings(self, given: Any) -> None:
        items = [given] if isinstance(given, str) or _token_ids(given) else list(given)
        for item in items:
            self.totals.prompts += 1
            size = len(item) if not isinstance(item, str) else len(self.counter.tokens(item))
            self.totals.prompt_tokens += size


def _token_ids(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], int)


def _lines(raw: Iterable[bytes], model: str | None) -> Iterable[tuple[bytes, str | None]]:
    """Each line (with ``model`` put in its body when given) and the ``url`` it names."""
    for line in raw:
        try:
            item = json.loads(line) if line.strip() else None
        except ValueError:
            item = None
        if not isinstance(item, dict):
            yield line, None
            continue
        if model is not None and isinstance(item.get("body"), dict):
            item["body"]["model"] = model
            line = json.dumps(item).encode()
        url = item.get("url")
        yield line, url if isinstance(url, str) else None


def count(
    raw: Iterable[bytes], catalog: Catalog, settings: Settings, model: str | None
) -> tuple[str, str, Totals, PromptCounter]:
    """(model, endpoint, totals, counter) of a batch file; a 400 naming the first bad line."""
    checks = line_checks()
    validator: LineValidator | None = None
    counter: _Counter | None = None
    endpoint = ""
    for line_no, (line, url) in enumerate(_lines(raw, model), start=1):
        if validator is None and url is not None:
            endpoint = url
            if url not in checks:
                raise invalid(f"Line {line_no}: batches for {url} are not supported.", "url")
            validator = LineValidator(
                url,
                checks[url],
                functools.partial(_batch_model, catalog, endpoint=url),
                settings.batch_max_lines,
            )
        if validator is None:
            if line.strip():
                raise invalid(f"Line {line_no}: not a batch request line.", "file")
            continue
        good = validator.check(line_no, line)
        if validator.failed:
            first = validator.errors[0]
            raise invalid(f"Line {first.line}: {first.message}", first.param)
        if good is None:
            continue
        if counter is None:
            spec = catalog.get(good.model)
            assert spec is not None  # the validator checked it
            counter = _Counter(PromptCounter(spec), settings.default_max_tokens)
        counter.line(endpoint, json.loads(good.body))
    if validator is None or counter is None:
        raise invalid("The file has no requests.", "file")
    return str(validator.model), endpoint, counter.totals, counter.counter


def _batch_model(catalog: Catalog, model: str, endpoint: str) -> bool:
    """As batch validation decides it: a model of the wrong kind for the endpoint (an
    embedding model on Chat, a chat model on embeddings) is a 400, not a price."""
    spec = catalog.get(model)
    if spec is None:
        return False
    spec.check_task(embeddings=endpoint == EMBEDDINGS)
    return spec.serves(BATCH)


def estimate(
    raw: Iterable[bytes],
    catalog: Catalog,
    settings: Settings,
    *,
    model: str | None,
    window: str,
) -> dict[str, Any]:
    """The ``batch.cost_estimate`` object of a batch file's lines."""
    if window not in settings.window_seconds():
        known = ", ".join(settings.window_seconds())
        raise invalid(f"`completion_window` must be one of {known}.", "completion_window")
    if model is not None and catalog.get(model) is None:
        raise PlatformError(404, f"The model `{model}` does not exist.", param="model")
    name, endpoint, t, counter = count(raw, catalog, settings, model)
    return {
        "object": "batch.cost_estimate",
        "model": name,
        "endpoint": endpoint,
        "completion_window": window,
        "lines": t.lines,
        "lines_too_long": t.too_long,
        "prompts": t.prompts,
        "prompt_tokens": t.prompt_tokens,
        "cached_prompt_tokens": t.cached_tokens,
        "max_output_tokens": t.output_tokens,
        "currency": "usd",
        "cost": _range(costs.tariff(catalog, name, BATCH, window), t),
        "realtime_cost": _range(costs.tariff(catalog, name, REALTIME), t),
        # Counted by the simulated engine's rules (one token per word), not a real tokenizer.
        "simulated": counter.spec.engine == "simulated",
    }


def _range(tariff: Tariff | None, t: Totals) -> dict[str, float] | None:
    """USD from ``low`` (shared prefixes cached) to ``high`` (nothing cached); None when the
    catalog names no price."""
    if tariff is None:
        return None
    low = costs.charge(tariff, t.prompt_tokens, t.output_tokens, t.cached_tokens)
    high = costs.charge(tariff, t.prompt_tokens, t.output_tokens, 0)
    return {"low": round(low.total, 10), "high": round(high.total, 10)}
