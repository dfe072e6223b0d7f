"""Kill an engine's child processes when the worker that started them dies, even by SIGKILL.

vLLM runs its engine core (and on GPUs its model workers) in child processes. A worker that is
shut down cleanly stops them, but a worker killed with SIGKILL cannot: its children are
re-parented and keep holding the GPU (or, on CPU, gigabytes of memory and the cores). Linux's
parent-death signal would need code inside vLLM's children, so instead the worker starts this
small guard process, holding the write end of a pipe to it. The guard keeps a list of the
worker's descendants (pid and start time, so a reused pid is never hit) and, once the pipe
reads end-of-file because the worker is gone, kills them all.

Run as ``python -m inference_platform.engines.child_guard PID`` by ``start_guard``; needs
psutil (a dependency of vLLM).
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from typing import Any

# Descendants are looked up every POLL_SECONDS while they change (the engine starting its
# processes), and every SETTLED_POLL_SECONDS once they have not changed for SETTLE_SECONDS: each
# lookup scans /proc, and on a CPU host that time comes out of the engine's. A process started
# later under one already known is still found: the kill takes the known ones' descendants.
POLL_SECONDS = 0.5
SETTLED_POLL_SECONDS = 5.0
SETTLE_SECONDS = 30.0


def start_guard(pid: int | None = None) -> subprocess.Popen[bytes]:
    """Start a guard for ``pid`` (default: this process). Close its stdin to fire it early."""
    return subprocess.Popen(
        [sys.executable, "-m", "inference_platform.engines.child_guard", str(pid or os.getpid())],
        stdin=subprocess.PIPE,
        close_fds=True,
    )


def stop_guard(guard: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Fire the guard now (the worker is stopping) and wait for it to finish."""
    if guard.stdin is not None:
        guard.stdin.close()
    try:
        guard.wait(timeout)
    except subprocess.TimeoutExpired:
        guard.kill()


def _snapshot(psutil: Any, parent: Any, me: int) -> dict[int, float]:
    """The parent's descendants other than this guard, as pid -> start time."""
    found: dict[int, float] = {}
    try:
        children = parent.children(recursive=True)
    except psutil.Error:
        return found
    for child in children:
        if child.pid == me:
            continue
        try:
            found[child.pid] = child.create_time()
        except psutil.Error:
            continue
    return found


def _kill_all(psutil: Any, known: dict[int, float]) -> None:
    """SIGKILL every recorded process still alive (and anything it started since)."""
    victims = []
    for pid, started in known.items():
        try:
            proc = psutil.Process(pid)
            if proc.create_time() != started:
                continue  # the pid now belongs to someone else
            victims.extend(proc.children(recursive=True))
            victims.append(proc)
        except psutil.Error:
            continue
    for proc in victims:
        try:
            proc.kill()
        except psutil.Error:
            pass
    _wait_dead(psutil, victims, timeout=5.0)


def _wait_dead(psutil: Any, procs: list[Any], timeout: float) -> None:
    """Wait until every process is gone or a zombie. The worker's own children stay zombies
    until it reaps them, and a stopping worker reaps them only once this guard has exited
    (``stop_guard``): waiting for them to vanish held every worker's shutdown for the whole
    timeout, past a supervisor's grace period (honcho's 5 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(_dead(psutil, proc) for proc in procs):
            return
        time.sleep(0.05)


def _dead(psutil: Any, proc: Any) -> bool:
    try:
        return bool(proc.status() == psutil.STATUS_ZOMBIE)
    except psutil.Error:  # gone (or no longer ours to see)
        return True


def main(pid: int) -> None:
    import psutil

    me = os.getpid()
    try:
        parent = psutil.Process(pid)
    except psutil.Error:
        return
    known: dict[int, float] = {}
    changed = time.monotonic()
    stdin = sys.stdin.buffer
    while True:
        found = _snapshot(psutil, parent, me)
        if found.keys() - known.keys():
            changed = time.monotonic()
        known.update(found)
        settled = time.monotonic() - changed >= SETTLE_SECONDS
        wait = SETTLED_POLL_SECONDS if settled else POLL_SECONDS
        readable, _, _ = select.select([stdin], [], [], wait)
        if readable and not os.read(stdin.fileno(), 4096):
            break  # end of file: the worker closed the pipe or died
    _kill_all(psutil, known)


if __name__ == "__main__":
    main(int(sys.argv[1]))
