"""Write ``benchmarks/results/faults.md`` from the pieces a ``make faults`` run leaves in its
report folder: the random run's table (``faults.md``), the recovery run's (``recovery.md``)
and the fuzz figures (``fuzz.json``); with the command, date, commit, duration and exit
status, so the committed figures say which code made them and whether the run passed.

    python -m tests.faults.report REPORT_DIR OUT --command "make faults" --seconds N --status RC
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from inference_platform.settings import Settings


def _git(*args: str) -> str:
    out = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    return out.stdout.strip()


def _piece(folder: Path, name: str) -> str:
    path = folder / name
    return path.read_text().strip() if path.exists() else "(not produced: the run stopped first)"


def render(folder: Path, *, command: str, seconds: float, status: int) -> str:
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    fuzz_path = folder / "fuzz.json"
    fuzz = json.loads(fuzz_path.read_text()) if fuzz_path.exists() else None
    defaults = Settings()
    minutes, secs = divmod(round(seconds), 60)
    lines = [
        "# Fault injection: the full run",
        "",
        f"- command: `{command}`",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; duration {minutes} min {secs} s; "
        f"exit status {status} ({'passed' if status == 0 else 'FAILED'})",
        f"- commit: `{commit}`" + (" (with uncommitted changes in the tree)" if dirty else ""),
        f"- host: {os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}"
        "; the simulated engine; private embedded Postgres and Redis",
        f"- settings: defaults (lease {defaults.lease_seconds:g} s, sweep every "
        f"{defaults.sweep_interval_seconds:g} s, heartbeat every "
        f"{defaults.worker_heartbeat_seconds:g} s)",
        "",
        "## Random faults with load",
        "",
        "A 5,000-line batch, background and flex responses and realtime traffic while random "
        "faults land (kill -9 of the engine worker, the control role and the API; Redis flush "
        "and restart; Postgres restart and a 30 s outage) until 100 processes were killed "
        "(`test_nothing_lost_doubled_or_stuck_under_faults`).",
        "",
        _piece(folder, "faults.md"),
        "",
        "## Workers that come back by themselves",
        "",
        "A batch-only and a realtime+flex worker, never restarted from outside, through a Redis "
        "FLUSHALL, a kill -9 of the control role, a Postgres restart, a 31 s Postgres outage, "
        "Redis silent for 31 s and every Redis connection cut silently "
        "(`test_workers_serve_again_by_themselves`). Seconds from each fault's end until each "
        "check first passed (`-`: not within 25 s; the test requires 15 s):",
        "",
        _piece(folder, "recovery.md"),
        "",
        "## Fuzz",
        "",
        (
            f"{fuzz['cases']:,} requests drawn from the request schemas; "
            f"{fuzz['errors_500']} answered with a 5xx other than 503."
            if fuzz
            else "(not produced: the run stopped first)"
        ),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--command", default="make faults")
    parser.add_argument("--seconds", type=float, default=0.0)
    parser.add_argument("--status", type=int, default=0)
    args = parser.parse_args()
    text = render(args.folder, command=args.command, seconds=args.seconds, status=args.status)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
