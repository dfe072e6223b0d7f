"""Engine workers give way to the platform's own processes when the CPU is short.

An engine keeps its cores busy: vLLM's CPU build pins its model runner to one core and its
engine core spins on another while it waits for the runner. The API, the control role,
Postgres, Redis and the worker's own heartbeat need little CPU, but need it promptly. On a
2-core host we saw them wait seconds for a CPU (a realtime request refused with 503 because the
worker's heartbeat could not run, a 48-line batch taking 5 s to validate), while a real-time
probe process on the same host never waited. Lowering the engine worker's priority fixes that.
It has a price, paid where realtime is not served: the platform's processes then preempt the
engine whenever they wake, and a batch-only vLLM worker on that host ran a fifth slower
(``benchmarks/batch_throughput.py``: ratio 0.79 at nice 10, 0.85 at nice 5, 0.91-0.99 at 0).

Linux schedules sessions as groups first when autogroups are on (the default on desktops and
small VMs; ``make run`` starts every process in its own session), so the plain nice value only
orders the threads of one session. A worker in a session of its own raises its session's
autogroup nice too (allowed to any owner, upwards only): one it leads, or one without a
controlling terminal (``make run`` starts each role as ``sh -c``, which leads the session). A
worker started from a terminal leaves the terminal's session alone.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

_AUTOGROUP = "/proc/self/autogroup"


def yield_cpu(nice: int) -> None:
    """Lower this process's CPU priority to ``nice`` (never raise it; 0: leave it as it is).

    Call it before the engine starts: threads and child processes (vLLM's engine core and
    model runner) inherit the calling thread's niceness.
    """
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    nice = min(nice, 19)
    try:
        if os.getpriority(os.PRIO_PROCESS, 0) < nice:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
    except OSError as exc:
        log.warning("could not lower the worker's CPU priority to nice %d: %s", nice, exc)
        return
    if not os.path.exists(_AUTOGROUP) or not _own_session():
        return
    try:
        with open(_AUTOGROUP, "w") as f:
            f.write(str(nice))
    except OSError as exc:  # autogroups off: the plain nice value already applies
        log.debug("autogroup nice not set: %s", exc)


def _own_session() -> bool:
    """Whether this process's session is its own: it leads it, or it has no controlling
    terminal (a service manager's session, not a user's shell)."""
    if os.getsid(0) == os.getpid():
        return True
    try:
        with open("/proc/self/stat") as f:
            # After the command name: state, ppid, pgrp, session, tty_nr, ...
            tty_nr = int(f.read().rsplit(")", 1)[1].split()[4])
    except (OSError, ValueError, IndexError):
        return False
    return tty_nr == 0
