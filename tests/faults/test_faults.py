"""The fault-injection runs: reduced in ``make test``, full in ``make faults`` (FAULTS_FULL=1).

The random run prints its figures as a table and fails on any lost, doubled, stuck or unbilled
piece of work; the recovery run fails when a worker, never restarted from outside, does not
serve again within 15 s of a fault's end.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.faults.harness import run_faults
from tests.faults.recovery import LINES_PER_SECOND, RECOVERY_SECONDS, Recovery, RecoveryRun

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


# The proxy's sockets that a cut left open are closed with its loop, after the test's own
# garbage collection may have met them.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_workers_serve_again_by_themselves(tmp_path: Path) -> None:
    """The mix that once left workers alive but idle, none of them restarted from outside."""
    outage = 31.0 if FULL else 5.0
    run = RecoveryRun(tmp_path)
    faults = [
        ("redis flushall", run.flush_redis),
        ("kill -9 control", lambda: run.kill("control")),
        ("postgres restart", lambda: run.restart_postgres(0.0)),
        (f"postgres outage {outage:g} s", lambda: run.restart_postgres(outage)),
        (f"redis silent {outage:g} s", lambda: run.silence_redis(outage)),
        ("redis connections cut", run.cut_redis_connections),
        ("redis flushall", run.flush_redis),
    ]
    found: list[Recovery] = []
    try:
        run.start()
        run.realtime_load()
        for name, inject in faults:
            # Lines for the batch worker to finish after the fault, however fast it runs.
            run.keep_lines_queued(int(2 * LINES_PER_SECOND * (outage + RECOVERY_SECONDS)))
            print(f"fault: {name}", flush=True)
            inject()
            found.append(run.recovery(name, wait=RECOVERY_SECONDS + 10))
        alive = run.alive()
    except BaseException:
        for name in ("web", "batch", "realtime", "control"):
            print(f"==== {name} log ====\n{run.stack.log(name)[-3000:]}")
        raise
    finally:
        run.stop()
    print("\n" + recovery_table(found))
    report = Path(os.environ.get("FAULTS_REPORT_DIR", tmp_path))
    report.mkdir(parents=True, exist_ok=True)
    (report / "recovery.md").write_text(recovery_table(found))
    assert all(alive.values()), f"a worker exited or was replaced: {alive}"
    slow = [r for r in found if r.worst > RECOVERY_SECONDS]
    assert not slow, f"not serving again within {RECOVERY_SECONDS:g} s: {slow}"


def recovery_table(found: list[Recovery]) -> str:
    checks = list(found[0].seconds) if found else []
    lines = [
        "| fault | " + " | ".join(checks) + " |",
        "|---|" + "---|" * len(checks),
    ]
    for r in found:
        cells = ["-" if s is None else f"{s:.1f}" for s in r.seconds.values()]
        lines.append(f"| {r.fault} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
