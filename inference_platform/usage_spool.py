"""A local spool for usage rows the database could not take (Postgres away).

Realtime requests skip Postgres on the hot path; their usage is inserted by the worker
afterwards. When that insert fails, the rows go to a file under ``VAR_DIR/usage-spool`` so a
worker killed during the outage loses none of them. The control role's sweeper (and each
worker as it starts) records spooled rows once the database answers again.

Before a realtime request's answer is published, its usage row is appended to its feed's
journal (``journal-<pid>-<tier>.jsonl``, written but not fsynced: a killed process's writes
survive in the OS); the journal is emptied once the rows are in Postgres or spooled. The
drain records the journals of processes that are gone, so a worker killed -9 between its
answer and its insert bills the request all the same.

Each spool write is one new file, written aside and renamed into place, so a reader never
sees half a file and no locks are needed. Recording is idempotent (one usage row per request
id), so two processes draining the same file at once bill nothing twice.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

from inference_platform import usage
from inference_platform.db import Database

log = logging.getLogger(__name__)

SPOOL_DIR = "usage-spool"
_SUFFIX = ".json"


def spool_dir(var_path: Path) -> Path:
    return var_path / SPOOL_DIR


def spool(var_path: Path, rows: list[dict[str, Any]]) -> bool:
    """Write ``rows`` to a new spool file (fsynced); False if even that failed."""
    if not rows:
        return True
    directory = spool_dir(var_path)
    name = f"usage-{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{name}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(rows, f)
            f.flush()
            os.fsync(f.fileno())
        tmp.rename(directory / f"{name}{_SUFFIX}")
    except OSError as exc:
        log.error("could not spool usage of %d requests: %s", len(rows), exc)
        return False
    log.warning("database unavailable: usage of %d requests spooled to %s", len(rows), directory)
    return True


class Journal:
    """One feed's journal of usage not yet in Postgres (used from the feed's thread only)."""

    def __init__(self, var_path: Path, tier: str) -> None:
        self.path = spool_dir(var_path) / f"{JOURNAL_PREFIX}{os.getpid()}-{tier}.jsonl"
        self._file: Any = None

    def append(self, row: dict[str, Any]) -> None:
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
            self._file.write(json.dumps(row) + "\n")
            self._file.flush()
        except OSError as exc:
            log.warning("usage journal %s: %s", self.path, exc)

    def clear(self) -> None:
        """Everything appended so far is in Postgres or a spool file."""
        if self._file is not None:
            try:
                self._file.truncate(0)
                self._file.seek(0)
            except OSError as exc:
                log.warning("usage journal %s: %s", self.path, exc)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


JOURNAL_PREFIX = "journal-"


def _orphan_journals(directory: Path) -> list[Path]:
    out = []
    for path in directory.glob(f"{JOURNAL_PREFIX}*.jsonl"):
        pid = path.name.removeprefix(JOURNAL_PREFIX).split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            out.append(path)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pending(var_path: Path) -> list[Path]:
    """Spool files waiting to be recorded, oldest first."""
    directory = spool_dir(var_path)
    if not directory.is_dir():
        return []
    return sorted(directory.glob(f"usage-*{_SUFFIX}")) + _orphan_journals(directory)


def drain(var_path: Path, db: Database) -> int:
    """Record every spooled row; returns how many rows were recorded (0 while Postgres is
    still away: the files stay for the next try)."""
    recorded = 0
    for path in pending(var_path):
        try:
            raw = path.read_text(encoding="utf-8")
            if path.name.startswith(JOURNAL_PREFIX):
                # A killed writer may leave half a last line: its rows before it still count.
                rows = [json.loads(x) for x in raw.splitlines() if x.endswith("}")]
            else:
                rows = json.loads(raw)
        except FileNotFoundError:
            continue  # another process drained it
        except ValueError:
            # Never written whole (rename makes this unlikely); keep it for an operator.
            log.error("unreadable usage spool file %s; left in place", path)
            path.rename(path.with_suffix(".bad"))
            continue
        with db.session() as s:
            usage.record(s, rows)
        path.unlink(missing_ok=True)
        recorded += len(rows)
    if recorded:
        log.info("recorded usage of %d spooled requests", recorded)
    return recorded
