"""The Grafana dashboard queries only metrics the platform (or vLLM) exports."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from inference_platform.metrics import exported_names

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "inference-platform.json"
# Names in a PromQL expression: metric names, label names, functions, keywords; those of
# our metrics and vLLM's are told apart by their prefixes.
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    return [t["expr"] for p in panels for t in p["targets"]]


def _metrics(expr: str) -> set[str]:
    without_labels = re.sub(r"\{[^}]*\}", "", expr)
    return {n for n in _NAME.findall(without_labels) if n.startswith(("inference_", "vllm:"))}


def test_dashboard_has_a_row_per_tier_and_for_batches_and_workers() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == ["Realtime tier", "Flex tier", "Batch tier", "Batches", "Workers"]


def test_every_query_names_an_exported_metric() -> None:
    exported = exported_names()
    unknown = set()
    for expr in _exprs():
        names = _metrics(expr)
        assert names, f"no platform metric in {expr!r}"
        unknown |= {n for n in names if n.startswith("inference_") and n not in exported}
    assert not unknown


def test_vllm_queries_name_metrics_vllm_defines() -> None:
    spec = importlib.util.find_spec("vllm")
    if spec is None or spec.origin is None:
        pytest.skip("vLLM is not installed here; its metric names cannot be checked")
    loggers = Path(spec.origin).parent / "v1" / "metrics" / "loggers.py"
    source = loggers.read_text()
    wanted = {n for expr in _exprs() for n in _metrics(expr) if n.startswith("vllm:")}
    assert wanted
    assert {n for n in wanted if f'"{n}"' not in source} == set()
