"""The sweeper: Postgres is the source of truth, Celery messages are hints.

Runs periodically on the control role. Each part repairs one kind of gap: work queued but
never started (lost message), work whose worker died (lapsed lease), work past its deadline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from inference_platform.platform import Platform

log = logging.getLogger(__name__)


def sweep(platform: Platform) -> None:
    for part in _parts():
        try:
            part(platform)
        except Exception:  # one failing part must not stop the others
            log.exception("sweep part %s failed", getattr(part, "__name__", part))


def _parts() -> list[Callable[[Platform], None]]:
    """Sweep functions of the job kinds present (responses/flex, batches)."""
    import importlib

    parts = []
    for module, name in (
        ("inference_platform.jobs", "sweep"),
        ("inference_platform.batches.sweep", "sweep"),
    ):
        try:
            parts.append(getattr(importlib.import_module(module), name))
        except ModuleNotFoundError as exc:
            if exc.name is None or not module.startswith(exc.name):
                raise
    return parts
