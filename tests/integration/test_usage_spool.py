"""Usage spooled during a database outage is recorded once when the database is back."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from inference_platform import usage_spool
from inference_platform.db import Database
from inference_platform.usage import usage_row
from tests.helpers import usage_rows


def _row(request_id: str) -> dict:
    return usage_row(
        request_id=request_id,
        owner="spool-tenant",
        model="sim",
        tier="realtime",
        endpoint="/v1/chat/completions",
        input_tokens=3,
        output_tokens=5,
    )


def test_spooled_usage_is_recorded_once(tmp_path: Path, db: Database) -> None:
    ids = [f"req_spool_{uuid.uuid4().hex}" for _ in range(3)]
    assert usage_spool.spool(tmp_path, [_row(i) for i in ids[:2]])
    assert usage_spool.spool(tmp_path, [_row(ids[2]), _row(ids[0])])  # a repeat bills once
    assert len(usage_spool.pending(tmp_path)) == 2
    assert usage_spool.drain(tmp_path, db) == 4
    assert usage_spool.pending(tmp_path) == []
    assert [len(usage_rows(db, i)) for i in ids] == [1, 1, 1]
    assert usage_spool.drain(tmp_path, db) == 0


def test_drain_while_the_database_is_away_keeps_the_files(tmp_path: Path) -> None:
    usage_spool.spool(tmp_path, [_row("req_spool_away")])
    away = Database("postgresql+psycopg2://nobody@127.0.0.1:1/none", pool_size=1)
    try:
        usage_spool.drain(tmp_path, away)
    except Exception:
        pass
    finally:
        away.dispose()
    assert len(usage_spool.pending(tmp_path)) == 1


def test_journal_of_a_killed_worker_is_recorded(tmp_path: Path, db: Database) -> None:
    import subprocess
    import sys

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    rid = f"req_journal_{uuid.uuid4().hex}"
    directory = usage_spool.spool_dir(tmp_path)
    directory.mkdir(parents=True)
    journal = directory / f"{usage_spool.JOURNAL_PREFIX}{int(gone.stdout)}-realtime.jsonl"
    journal.write_text(json.dumps(_row(rid)) + '\n{"request_id": "half a li')
    live = usage_spool.Journal(tmp_path, "realtime")  # this process: left alone
    live.append(_row(f"req_live_{uuid.uuid4().hex}"))
    assert usage_spool.drain(tmp_path, db) == 1
    live.close()
    assert len(usage_rows(db, rid)) == 1 and not journal.exists() and live.path.exists()


def test_cached_tokens_are_kept_and_older_spooled_rows_count_none(
    tmp_path: Path, db: Database
) -> None:
    """A row spooled with cached tokens keeps them; one spooled before they were counted (no
    such key) goes in with 0, in the same insert."""
    cached, older = (f"req_spool_{uuid.uuid4().hex}" for _ in range(2))
    row = {**_row(cached), "cached_tokens": 2}
    old = {k: v for k, v in _row(older).items() if k != "cached_tokens"}
    assert usage_spool.spool(tmp_path, [row, old])
    assert usage_spool.drain(tmp_path, db) == 2
    [kept], [counted] = usage_rows(db, cached), usage_rows(db, older)
    assert (kept.input_tokens, kept.cached_tokens) == (3, 2)
    assert (counted.input_tokens, counted.cached_tokens) == (3, 0)
