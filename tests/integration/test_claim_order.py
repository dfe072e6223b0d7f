"""The order in which workers take a batch's lines, against a real Postgres: the lines that may
run longest first, so a batch does not end on a few long lines with the engine's other slots
empty; file order among equals; the batch's deadline before all of that."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, text

from inference_platform import ids
from inference_platform.batches.lines import LineValidator
from inference_platform.batches.rows import RowCopier
from inference_platform.db.models import Batch
from inference_platform.generation import CHAT, COMPLETIONS
from inference_platform.jobs import store
from inference_platform.platform import Platform
from inference_platform.settings import Settings

# No worker serves this model: only the test claims its lines.
MODEL = "claim-order-model"


@pytest.fixture
def platform(settings: Settings) -> Iterator[Platform]:
    p = Platform(settings)
    try:
        yield p
    finally:
        with p.db.session() as s:
            s.execute(delete(Batch).where(Batch.model == MODEL))  # lines go with it
        p.db.dispose()


def queue_batch(
    platform: Platform, endpoint: str, bodies: list[dict[str, object]], hours: int = 24
) -> tuple[str, dict[str, int]]:
    """A batch whose lines are queued as validation queues them; (its id, line by custom_id)."""
    batch = Batch(
        id=ids.new_id(ids.BATCH),
        owner="claim-order",
        endpoint=endpoint,
        input_file_id="file-claim-order",
        completion_window="24h",
        status="in_progress",
        model=MODEL,
        expires_at=datetime.now(UTC) + timedelta(hours=hours),
    )
    validator = LineValidator(
        endpoint=endpoint,
        check_body=lambda body: body,
        serves_model=lambda m: m == MODEL,
        max_lines=100,
    )
    lines = {}
    with platform.db.session() as s:
        s.add(batch)
        s.flush()
        copier = RowCopier(s, batch)
        for line_no, body in enumerate(bodies, start=1):
            raw = {"custom_id": f"c{line_no}", "method": "POST", "url": endpoint, "body": body}
            good = validator.check(line_no, json.dumps(raw).encode())
            assert good is not None, validator.errors
            copier.add(line_no, good)
            lines[good.custom_id] = line_no
        copier.flush()
    return batch.id, lines


def claimed(platform: Platform, limit: int) -> list[str]:
    """custom_ids of the next ``limit`` lines a batch worker of MODEL takes."""
    got = store.claim(platform, tier="batch", model=MODEL, limit=limit)
    with platform.db.session() as s:
        by_id: dict[str, str] = dict(
            s.execute(
                text("SELECT id, custom_id FROM requests WHERE id = ANY(:ids)"),
                {"ids": [c.id for c in got]},
            ).all()
        )
    return [by_id[c.id] for c in got]


def test_a_batch_runs_its_longest_lines_first(platform: Platform) -> None:
    limits = [16, 256, None, 64, 256, 128]  # None: Completions' default of 16
    bodies = [
        {"model": MODEL, "prompt": "hi", **({} if m is None else {"max_tokens": m})} for m in limits
    ]
    queue_batch(platform, COMPLETIONS, bodies)
    assert claimed(platform, 3) == ["c2", "c5", "c6"]  # 256, 256 (file order), 128
    assert claimed(platform, 10) == ["c4", "c1", "c3"]  # 64, then 16 and the default 16


def test_a_chat_line_without_a_limit_goes_first(platform: Platform) -> None:
    """Chat's default is the rest of the context: possibly the longest of all."""
    bodies: list[dict[str, object]] = [
        {"model": MODEL, "messages": [{"role": "user", "content": "x"}], **limit}
        for limit in ({"max_tokens": 8}, {}, {"max_completion_tokens": 32})
    ]
    queue_batch(platform, CHAT, bodies)
    assert claimed(platform, 3) == ["c2", "c3", "c1"]


def test_the_earlier_deadline_still_comes_first(platform: Platform) -> None:
    queue_batch(platform, COMPLETIONS, [{"model": MODEL, "prompt": "a", "max_tokens": 200}])
    urgent, _ = queue_batch(
        platform, COMPLETIONS, [{"model": MODEL, "prompt": "b", "max_tokens": 4}], hours=1
    )
    first = store.claim(platform, tier="batch", model=MODEL, limit=1)
    assert [c.batch_id for c in first] == [urgent]


def test_the_claim_reads_the_queue_index(platform: Platform) -> None:
    """No sort of a batch's queued lines per claim: the plan walks ix_requests_batch_queue."""
    queue_batch(platform, COMPLETIONS, [{"model": MODEL, "prompt": "a", "max_tokens": 5}])
    with platform.db.session() as s:
        # On a handful of rows the planner may well read another index and sort; what matters
        # is that this index gives the claim's order as it is, so that it never has to (an
        # index column in another direction would leave a Sort in the plan even so).
        s.execute(text("SET LOCAL enable_seqscan = off"))
        s.execute(text("SET LOCAL enable_sort = off"))
        params = {"tier": "batch", "model": MODEL, "n": 8, "lease": 6.0}
        plan = "\n".join(s.execute(text(f"EXPLAIN {store._CLAIM.text}"), params).scalars())
    assert "ix_requests_batch_queue" in plan and "Sort" not in plan, plan
