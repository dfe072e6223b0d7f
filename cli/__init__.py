"""The ``inference-platform`` console script: above the API, the workers and the core.

It is the only package that imports both ``api`` (to serve it) and ``workers`` (to start
them); nothing imports it.
"""

from __future__ import annotations

import logging

import click

from cli import admin, autobatcher, batch, run, tenants, usage
from inference_platform.embedded import load_settings
from inference_platform.settings import Settings

__all__ = ["load_settings", "main"]


@click.group()
def main() -> None:
    """Self-hostable, OpenAI-compatible LLM inference: realtime, flex and batch."""
    logging.basicConfig(
        level=Settings.from_env().log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The HTTP clients log every request at INFO: noise over `batch submit`'s progress bar.
    for name in ("httpx", "httpcore", "openai"):
        logging.getLogger(name).setLevel(logging.WARNING)


for _module in (run, admin, batch, autobatcher, usage, tenants):
    _module.register(main)
