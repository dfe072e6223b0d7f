"""``inference-platform batch estimate FILE``: what a batch of a local JSONL file would cost,
counted with the model's tokenizer and priced from the catalog; nothing is uploaded or run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click


def _lines(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        for line in f:
            yield line.rstrip(b"\r\n")


def _usd(cost: dict[str, float] | None) -> str:
    if cost is None:
        return "no tariff in the catalog"
    if cost["low"] == cost["high"]:
        return f"${cost['high']:.6f}"
    return f"${cost['low']:.6f} to ${cost['high']:.6f}"


def render(found: dict[str, Any], name: str) -> str:
    """The estimate as a few lines of text."""
    label = " (simulated engine: one token per word)" if found["simulated"] else ""
    too_long = found["lines_too_long"]
    rows = [
        f"batch estimate of {name} for {found['model']}{label}",
        f"  endpoint {found['endpoint']}, completion window {found['completion_window']}",
        f"  lines                {found['lines']:>12}"
        + (f"  ({too_long} do not fit the context)" if too_long else ""),
        f"  prompt tokens        {found['prompt_tokens']:>12}"
        f"  ({found['cached_prompt_tokens']} expected from the prefix cache)",
        f"  output tokens, most  {found['max_output_tokens']:>12}",
        f"  cost, batch {found['completion_window']:<8} {_usd(found['cost'])}",
        f"  cost, realtime       {_usd(found['realtime_cost'])}",
    ]
    return "\n".join(rows)


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", default=None, help="Price for this model (default: the lines' own).")
@click.option("--window", default="24h", show_default=True, help="Completion window: 24h or 1h.")
@click.option("--json", "as_json", is_flag=True, help="Print the estimate as JSON.")
def estimate(file: Path, model: str | None, window: str, as_json: bool) -> None:
    """Price a batch file before running it: tokens and cost range, nothing uploaded.

    The low end counts each prefix the lines share once (the engine's prefix cache), the high
    end none; both assume every line reaches its output limit.
    """
    from inference_platform.batches.estimate import estimate as price
    from inference_platform.catalog import load_catalog
    from inference_platform.embedded import load_settings
    from inference_platform.errors import PlatformError

    settings = load_settings()
    try:
        found = price(_lines(file), load_catalog(settings), settings, model=model, window=window)
    except PlatformError as err:
        raise click.ClickException(err.message) from None
    except OSError as err:  # the tokenizer's files: a catalog path relative to another directory
        raise click.ClickException(
            f"cannot load the model's tokenizer ({err}). The demo models live under "
            f"{settings.var_path}: run this where `make run` runs, or set INFERENCE_VAR_DIR "
            "(or INFERENCE_MODELS) as the platform has it."
        ) from None
    click.echo(json.dumps(found, indent=2) if as_json else render(found, file.name))
