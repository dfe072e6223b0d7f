"""The model catalog: the one place that declares which models are served, and how.

``INFERENCE_MODELS`` holds a JSON list (inline or in a file)::

    [{"name": "llama-8b", "engine": "vllm", "path": "/models/Llama-3.1-8B-Instruct",
      "engine_args": {"max_model_len": 8192}, "tiers": ["realtime", "flex", "batch"],
      "tariffs": {"realtime": [0.2, 0.6], "flex": [0.1, 0.3], "batch": [0.05, 0.15]},
      "created": 1732000000, "owned_by": "me"}]

``tariffs`` are USD per million input and output tokens, per tier, and optionally a third price
for cached input (prompt tokens the engine's prefix cache served); without it cached input costs
``CACHED_INPUT_FRACTION`` of the input price. ``"task": "embed"`` declares
an embedding model: it serves ``/v1/embeddings`` (realtime and batch) on the vllm engine's
pooling runner, and nothing else; the default ``"generate"`` serves every other endpoint.
``tool_parser`` (vllm engine) names one of vLLM's tool-call parsers (``hermes``, ``llama3_json``,
``mistral``, ...) that reads the model's own tool-call format: the model then serves
``tool_choice: "auto"``.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from inference_platform.errors import PlatformError
from inference_platform.settings import Settings

TIERS = ("realtime", "flex", "batch")
ENGINES = ("transformers", "simulated", "vllm")
DEMO_MODEL = "demo-tiny"
DEMO_EMBED_MODEL = "demo-embed"
GENERATE, EMBED = "generate", "embed"
TASKS = (GENERATE, EMBED)
# Engines that compute embeddings (vLLM's pooling runner).
EMBED_ENGINES = ("vllm",)
# Tiers an embedding model offers: embeddings are realtime or batch work at OpenAI.
EMBED_TIERS = ("realtime", "batch")
# Cached input costs this share of the input price where a tariff names no price of its own:
# the prefill it skips is most of an input token's cost (hosted APIs charge 10-50%).
CACHED_INPUT_FRACTION = 0.25


class Tariff(NamedTuple):
    """USD per million tokens: input, output, and cached input."""

    input: float
    output: float
    cached_input: float


def tariff(values: Any) -> Tariff:
    """A tariff from the catalog's ``[input, output]`` or ``[input, output, cached_input]``."""
    if not isinstance(values, list | tuple) or len(values) not in (2, 3):
        raise ValueError(f"a tariff is [input, output] or [input, output, cached]: {values!r}")
    prices = [float(v) for v in values]
    if any(p < 0 for p in prices):
        raise ValueError(f"tariff prices cannot be negative: {values!r}")
    cached = prices[2] if len(prices) == 3 else prices[0] * CACHED_INPUT_FRACTION
    return Tariff(prices[0], prices[1], cached)


# The README's example prices, so usage reports show what flex and batch save out of the box.
DEMO_TARIFFS = {
    tier: tariff(prices)
    for tier, prices in {
        "realtime": (0.20, 0.60),
        "flex": (0.10, 0.30),
        "batch": (0.05, 0.15),
    }.items()
}
# The demo model writes its tool calls the Hermes way (see demo_model.CHAT_TEMPLATE).
DEMO_TOOL_PARSER = "hermes"
_PARSER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    engine: str
    path: str | None = None
    engine_args: dict[str, Any] = field(default_factory=dict)
    tiers: tuple[str, ...] = TIERS
    tariffs: dict[str, Tariff] = field(default_factory=dict)
    created: int = 1767225600
    owned_by: str = "inference-platform"
    task: str = GENERATE
    # vLLM's tool-call parser for this model's output: enables ``tool_choice: "auto"``.
    tool_parser: str | None = None

    def serves(self, tier: str) -> bool:
        return tier in self.tiers

    def check_task(self, *, embeddings: bool) -> None:
        """A 400 naming ``model`` when the endpoint does not fit what the model does."""
        if embeddings and self.task != EMBED:
            raise PlatformError(
                400,
                f"The model `{self.name}` is not an embedding model; /v1/embeddings needs a "
                'model declared with `"task": "embed"`.',
                param="model",
                code="invalid_model",
            )
        if not embeddings and self.task == EMBED:
            raise PlatformError(
                400,
                f"The model `{self.name}` is an embedding model; it serves /v1/embeddings only.",
                param="model",
                code="invalid_model",
            )


class Catalog:
    """Models by name, in declaration order."""

    def __init__(self, specs: list[ModelSpec]) -> None:
        names = [s.name for s in specs]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"model catalog names must be unique; repeated: {sorted(dupes)}")
        self._specs = {s.name: s for s in specs}

    def get(self, name: str) -> ModelSpec | None:
        return self._specs.get(name)

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def names(self) -> list[str]:
        return list(self._specs)


def demo_model_path(settings: Settings) -> Path:
    return settings.var_path / "models" / DEMO_MODEL


def demo_embed_path(settings: Settings) -> Path:
    return settings.var_path / "models" / DEMO_EMBED_MODEL


def default_engine() -> str:
    """The demo model's engine: real vLLM wherever it is installed, transformers elsewhere.

    ``find_spec`` looks vLLM up without importing it (an import takes seconds).
    """
    return "vllm" if importlib.util.find_spec("vllm") is not None else "transformers"


def load_catalog(settings: Settings) -> Catalog:
    """Parse ``settings.models``; with nothing configured, serve the demo model (and, where
    vLLM is installed, the demo embedding model)."""
    raw = settings.models.strip()
    if not raw:
        engine = default_engine()
        demo = ModelSpec(
            name=DEMO_MODEL,
            engine=engine,
            path=str(demo_model_path(settings)),
            tariffs=dict(DEMO_TARIFFS),
            # Tool-call parsers are vLLM's: the transformers fallback serves no "auto".
            tool_parser=DEMO_TOOL_PARSER if engine == "vllm" else None,
        )
        if engine not in EMBED_ENGINES:
            return Catalog([demo])
        embed = ModelSpec(
            name=DEMO_EMBED_MODEL,
            engine=engine,
            path=str(demo_embed_path(settings)),
            tiers=EMBED_TIERS,
            tariffs={t: DEMO_TARIFFS[t] for t in EMBED_TIERS},
            task=EMBED,
        )
        return Catalog([demo, embed])
    text = raw if raw.startswith("[") else Path(raw).read_text()
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"INFERENCE_MODELS is not valid JSON: {exc}") from None
    if not isinstance(entries, list) or not entries:
        raise ValueError("INFERENCE_MODELS must be a non-empty JSON list of models")
    specs = []
    for index, entry in enumerate(entries):
        try:
            specs.append(_spec(entry))
        except ValueError:
            raise
        except (TypeError, AttributeError, IndexError, KeyError) as exc:
            # A field of the wrong shape (``"tiers": 3``, ``"tariffs": []``...): say which
            # entry, never a traceback from deep inside the parsing.
            raise ValueError(
                f"INFERENCE_MODELS entry {index}: a field has the wrong type ({exc})"
            ) from None
    return Catalog(specs)


def _spec(entry: dict[str, Any]) -> ModelSpec:
    if not isinstance(entry, dict) or "name" not in entry or "engine" not in entry:
        raise ValueError(f"each model needs at least 'name' and 'engine': {entry!r}")
    if entry["engine"] not in ENGINES:
        raise ValueError(f"model {entry['name']!r}: engine must be one of {ENGINES}")
    task = entry.get("task", GENERATE)
    if task not in TASKS:
        raise ValueError(f"model {entry['name']!r}: task must be one of {TASKS}")
    tiers = tuple(entry.get("tiers", EMBED_TIERS if task == EMBED else TIERS))
    unknown = set(tiers) - set(TIERS)
    if unknown:
        raise ValueError(f"model {entry['name']!r}: unknown tiers {sorted(unknown)}")
    if task == EMBED:
        if entry["engine"] not in EMBED_ENGINES:
            raise ValueError(f"model {entry['name']!r}: embedding models need the vllm engine")
        if set(tiers) - set(EMBED_TIERS):
            raise ValueError(f"model {entry['name']!r}: embedding models offer {EMBED_TIERS}")
    try:
        tariffs = {str(k): tariff(v) for k, v in entry.get("tariffs", {}).items()}
    except (TypeError, ValueError) as exc:
        raise ValueError(f"model {entry['name']!r}: {exc}") from None
    tool_parser = entry.get("tool_parser")
    if tool_parser is not None:
        if not isinstance(tool_parser, str) or not _PARSER_NAME.match(tool_parser):
            raise ValueError(f"model {entry['name']!r}: tool_parser must be a parser's name")
        if entry["engine"] != "vllm":
            raise ValueError(
                f"model {entry['name']!r}: tool_parser needs the vllm engine (vLLM's parsers)"
            )
    return ModelSpec(
        name=str(entry["name"]),
        engine=str(entry["engine"]),
        path=entry.get("path"),
        engine_args=dict(entry.get("engine_args", {})),
        tiers=tiers,
        tariffs=tariffs,
        created=int(entry.get("created", 1767225600)),
        owned_by=str(entry.get("owned_by", "inference-platform")),
        task=task,
        tool_parser=tool_parser,
    )
