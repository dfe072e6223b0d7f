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


def test_one_beat_entry_runs_every_duty_and_sweeps_on_its_interval(monkeypatch) -> None:
    from inference_platform import housekeeping
    from inference_platform.catalog import Catalog
    from inference_platform.celery_app import TASK_TICK, make_celery
    from inference_platform.settings import Settings

    settings = Settings(sweep_interval_seconds=2.0, capacity_interval_seconds=4.0)
    app = make_celery(settings, Catalog([]))
    assert [e["task"] for e in app.conf.beat_schedule.values()] == [TASK_TICK]

    ran: list[str] = []
    monkeypatch.setattr(housekeeping.dispatch, "dispatch", lambda p: ran.append("dispatch"))
    monkeypatch.setattr(housekeeping.delivery, "deliver_due", lambda p: ran.append("webhooks"))
    monkeypatch.setattr(housekeeping.sweep, "recover_lapsed", lambda p: ran.append("lapsed"))

    def failing_sweep(p: object) -> None:
        ran.append("sweep")
        raise RuntimeError("Postgres away")

    monkeypatch.setattr(housekeeping.sweep, "sweep", failing_sweep)
    monkeypatch.setattr(housekeeping.estimate, "refresh", lambda p: ran.append("estimate"))
    clock = [100.0]
    monkeypatch.setattr(housekeeping.time, "monotonic", lambda: clock[0])
    keeper = housekeeping.Housekeeper(platform=type("P", (), {"settings": settings})())  # type: ignore[arg-type]
    for tick in range(5):  # a tick a second, each a little late or early
        clock[0] = 100.0 + tick + (0.05 if tick % 2 else -0.05)
        keeper.tick()
    # Dispatch, webhooks and lapsed leases every tick; the sweep on ticks 0, 2 and 4. A
    # failing duty is logged and the others still run.
    assert ran.count("dispatch") == 5 and ran.count("webhooks") == 5
    assert ran.count("lapsed") == 5
    assert ran.count("sweep") == 3
    # The capacity model on ticks 0 and 4.
    assert ran.count("estimate") == 2
