"""A local spool for usage rows the database could not take (Postgres away).

Realtime requests skip Postgres on the hot path; their usage is inserted by the worker
afterwards. When that insert fails, the rows go to a file under ``VAR_DIR/usage-spool`` so a
worker killed during the outage loses none of them. The control role's sweeper (and each
worker as it starts) records spooled rows once the database answers again.

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


def pending(var_path: Path) -> list[Path]:
    """Spool files waiting to be recorded, oldest first."""
    directory = spool_dir(var_path)
    if not directory.is_dir():
        return []
    return sorted(directory.glob(f"usage-*{_SUFFIX}"))


def drain(var_path: Path, db: Database) -> int:
    """Record every spooled row; returns how many rows were recorded (0 while Postgres is
    still away: the files stay for the next try)."""
    recorded = 0
    for path in pending(var_path):
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
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
