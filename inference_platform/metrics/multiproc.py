"""The directory where the API's gunicorn processes share their Prometheus figures."""

from __future__ import annotations

import shutil

from inference_platform.settings import Settings


def fresh_dir(settings: Settings) -> str:
    """An empty directory for this API server (one per port), emptied at every start: files
    of processes from an earlier run would otherwise be added to the new run's figures."""
    path = settings.var_path / "prometheus" / f"web-{settings.port}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return str(path)
