"""The control role cleans up after itself and keeps beat's per-second lines out of the log."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from workers.main import NOISY_LOGGERS, SCHEDULE_PREFIX, _quiet_beat, remove_stale_schedules


def test_stale_beat_schedules_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = int(gone.stdout)
    for suffix in ("", ".db", ".dat"):
        (tmp_path / f"{SCHEDULE_PREFIX}{dead}{suffix}").write_text("x")
    mine = tmp_path / f"{SCHEDULE_PREFIX}{os.getpid()}.db"
    mine.write_text("x")
    remove_stale_schedules(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [mine.name]


def test_beat_dispatch_lines_are_below_info() -> None:
    _quiet_beat()
    assert all(logging.getLogger(n).getEffectiveLevel() == logging.WARNING for n in NOISY_LOGGERS)
