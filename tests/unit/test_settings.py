"""The settings registry, the catalog, and the README table that documents them."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference_platform.catalog import DEMO_MODEL, default_engine, load_catalog
from inference_platform.settings import Settings, settings_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_from_env_parses_types() -> None:
    s = Settings.from_env(
        {"INFERENCE_PORT": "9001", "INFERENCE_AUTH": "false", "INFERENCE_LEASE_SECONDS": "2.5"}
    )
    assert (s.port, s.auth, s.lease_seconds) == (9001, False, 2.5)
    assert Settings.from_env({}).port == 8000


def test_bad_values_name_the_variable() -> None:
    with pytest.raises(ValueError, match="INFERENCE_PORT"):
        Settings.from_env({"INFERENCE_PORT": "eighty"})
    with pytest.raises(ValueError, match="INFERENCE_AUTH"):
        Settings.from_env({"INFERENCE_AUTH": "maybe"})


def test_to_env_round_trips() -> None:
    s = Settings(port=1234, auth=False, models="[]")
    assert Settings.from_env(s.to_env()) == s


def test_window_seconds() -> None:
    assert Settings().window_seconds() == {"24h": 86400, "1h": 3600}


def test_readme_documents_every_setting() -> None:
    assert settings_table() in README.read_text(), (
        "README settings table is stale: paste `inference-platform settings` into it"
    )


def test_default_catalog_serves_the_demo_model() -> None:
    catalog = load_catalog(Settings(var_dir="/tmp/x"))
    spec = catalog.get(DEMO_MODEL)
    # Real vLLM wherever it is installed, transformers elsewhere.
    assert spec is not None and spec.engine == default_engine()
    assert spec.engine in ("vllm", "transformers")
    assert spec.path == "/tmp/x/models/demo-tiny"


def test_catalog_rejects_bad_entries() -> None:
    with pytest.raises(ValueError, match="engine"):
        load_catalog(Settings(models='[{"name": "a", "engine": "tensorrt"}]'))
    with pytest.raises(ValueError, match="unique"):
        load_catalog(
            Settings(
                models='[{"name": "a", "engine": "simulated"},'
                ' {"name": "a", "engine": "simulated"}]'
            )
        )
    with pytest.raises(ValueError, match="tiers"):
        load_catalog(Settings(models='[{"name": "a", "engine": "simulated", "tiers": ["x"]}]'))
