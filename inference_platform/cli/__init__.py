"""The ``inference-platform`` console script."""

from __future__ import annotations

import importlib
import logging

import click

from inference_platform import embedded
from inference_platform.settings import Settings

COMMAND_MODULES = ("run", "admin", "batch")


def load_settings() -> Settings:
    """Settings from the environment, with URLs of a running embedded setup filled in."""
    return embedded.recorded(Settings.from_env())


@click.group()
def main() -> None:
    """Self-hostable, OpenAI-compatible LLM inference: realtime, flex and batch."""
    logging.basicConfig(
        level=Settings.from_env().log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _register() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"inference_platform.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"inference_platform.cli.{name}":
                continue
            raise
        module.register(main)


_register()
