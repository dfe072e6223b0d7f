"""The fault-injection run: reduced in ``make test``, full in ``make faults`` (FAULTS_FULL=1).

Prints its figures as a table; fails on any lost, doubled, stuck or unbilled piece of work.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.faults.harness import run_faults

pytestmark = pytest.mark.e2e

FULL = os.environ.get("FAULTS_FULL") == "1"


def test_nothing_lost_doubled_or_stuck_under_faults(tmp_path: Path) -> None:
    if FULL:
        figures = run_faults(tmp_path, lines=5000, responses=40, kills=100, outage_seconds=30)
    else:
        figures = run_faults(tmp_path, lines=600, responses=6, kills=3, outage_seconds=4)
    fuzz = Path(os.environ.get("FAULTS_REPORT_DIR", tmp_path)) / "fuzz.json"
    if fuzz.exists():  # written by test_fuzz.py when it ran first (make faults)
        found = json.loads(fuzz.read_text())
        figures.fuzz_cases, figures.fuzz_500s = found["cases"], found["errors_500"]
    print("\n" + figures.table())
    report = Path(os.environ.get("FAULTS_REPORT_DIR", tmp_path))
    report.mkdir(parents=True, exist_ok=True)
    (report / "faults.md").write_text(figures.table())
    assert figures.lost == 0 and figures.doubled == 0 and figures.stuck == 0
    assert figures.unbilled == 0
    # Faults may refuse work (503 with Retry-After, or a dropped connection), never fail it.
    assert not {k: v for k, v in figures.realtime_errors.items() if k.isdigit() and k != "503"}
    assert figures.realtime_ok > 0
