"""The child guard kills a stopping worker's engine processes and lets the worker go at once:
the killed processes stay the worker's zombies until it reaps them, which it can only do once
the guard has exited, so the guard must not wait for them to vanish (that held every engine
worker's shutdown past a supervisor's grace period, and honcho then SIGKILLed it)."""

from __future__ import annotations

import subprocess
import time

import psutil

from inference_platform.engines.child_guard import start_guard, stop_guard


def _settled(guard: subprocess.Popen[bytes]) -> None:
    """Give the guard time to start and record this process's children."""
    proc = psutil.Process(guard.pid)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if time.time() - proc.create_time() > 2 and proc.status() == psutil.STATUS_SLEEPING:
            return
        time.sleep(0.1)


def test_stopping_the_guard_kills_the_children_and_returns_at_once() -> None:
    children = [subprocess.Popen(["sleep", "300"]) for _ in range(2)]
    try:
        guard = start_guard()
        _settled(guard)
        started = time.monotonic()
        stop_guard(guard)
        took = time.monotonic() - started
        assert guard.returncode == 0  # it finished by itself, not killed at the timeout
        assert took < 2.5, f"stop_guard took {took:.1f} s"
        assert [c.wait(timeout=5) for c in children] == [-9, -9]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
