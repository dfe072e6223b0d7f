"""The order in which workers take a batch's lines, against a real Postgres: grouped by prompt
prefix, so lines that share one run while the engine caches it; within a group the lines that
may run longest first, so a batch does not end on a few long lines with the engine's other
slots empty; file order among equals; the batch's deadline before all of that."""

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
    platform: Platform,
    endpoint: str,
    bodies: list[dict[str, object]],
    hours: int = 24,
    max_lines: int = 100,
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
        max_lines=max_lines,
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


def _doc_line(doc: int, question: int, max_tokens: int) -> dict[str, object]:
    document = f"document {doc}: " + " ".join(f"w{doc}-{i}" for i in range(200))
    return {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Answer from the document."},
            {"role": "user", "content": f"{document}\n\nQuestion {question}?"},
        ],
        "max_tokens": max_tokens,
    }


def test_lines_that_share_a_prefix_are_claimed_together(platform: Platform) -> None:
    """Three documents asked questions in shuffled order: each document's lines come out
    together (the longest first within them), so they run while its prefix is cached."""
    order = [(0, 1, 8), (1, 1, 64), (2, 1, 8), (0, 2, 32), (1, 2, 8), (2, 2, 16), (0, 3, 16)]
    queue_batch(platform, CHAT, [_doc_line(d, q, m) for d, q, m in order])
    got = claimed(platform, len(order))
    docs = [order[int(c.removeprefix("c")) - 1] for c in got]
    groups = [d for i, (d, _, _) in enumerate(docs) if i == 0 or docs[i - 1][0] != d]
    assert sorted(groups) == [0, 1, 2], docs  # each document in one run
    for doc in (0, 1, 2):
        limits = [m for d, _, m in docs if d == doc]
        assert limits == sorted(limits, reverse=True), docs


def test_the_claim_is_an_index_scan_on_50000_lines(platform: Platform) -> None:
    """EXPLAIN ANALYZE of the claim on a queued batch of 50,000 lines (100 prefixes): the
    planner, left to itself, walks ix_requests_batch_queue and sorts nothing."""
    bodies = [_doc_line(i % 100, i, 4 + i % 7) for i in range(50_000)]
    queue_batch(platform, CHAT, bodies, max_lines=len(bodies))
    with platform.db.session() as s:
        s.execute(text("ANALYZE requests"))
        params = {"tier": "batch", "model": MODEL, "n": 64, "lease": 6.0}
        plan = "\n".join(s.execute(text(f"EXPLAIN ANALYZE {store._CLAIM.text}"), params).scalars())
        s.rollback()  # EXPLAIN ANALYZE ran the claim: leave the lines queued
    print(plan)
    assert "ix_requests_batch_queue" in plan and "Sort" not in plan, plan
