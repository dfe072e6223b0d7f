"""Engine workers lower their CPU priority (and their session's) before the engine starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/autogroup").exists(), reason="Linux with autogroups only"
)

PROBE = (
    "import os; from inference_platform.engines.niceness import yield_cpu; "
    "yield_cpu({nice}); "
    "print(os.getpriority(os.PRIO_PROCESS, 0), open('/proc/self/autogroup').read().split()[-1])"
)


def probe(
    nice: int, *, new_session: bool, start_nice: int = 0, via_shell: bool = False
) -> tuple[int, int]:
    """(nice, autogroup nice) of a fresh process after ``yield_cpu(nice)``; ``via_shell``:
    as the child of ``sh -c`` leading a session without a terminal, as ``make run`` starts
    each role."""
    command = [sys.executable, "-c", PROBE.format(nice=nice)]
    if via_shell:
        command = ["sh", "-c", f'"{sys.executable}" -c "{PROBE.format(nice=nice)}"; true']
    out = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=True,
        start_new_session=new_session,
        preexec_fn=(lambda: os.nice(start_nice)) if start_nice else None,
        cwd=Path(__file__).resolve().parents[2],
    ).stdout.split()
    return int(out[0]), int(out[1])


def test_a_session_leader_lowers_itself_and_its_session() -> None:
    assert probe(7, new_session=True) == (7, 7)


def test_a_role_started_by_a_shell_in_a_session_of_its_own_lowers_that_session() -> None:
    assert probe(7, new_session=True, via_shell=True) == (7, 7)


def test_zero_leaves_it_and_a_lower_priority_is_never_raised() -> None:
    assert probe(0, new_session=True) == (0, 0)
    assert probe(7, new_session=True, start_nice=12)[0] == 12
